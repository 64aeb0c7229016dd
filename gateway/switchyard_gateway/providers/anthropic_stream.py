"""Anthropic Messages stream -> OpenAI `chat.completion.chunk` frames, event by event.

Created by `AnthropicAdapter.stream_translator` for each streamed response, fed by the
attempt runner. Event mapping:
- `message_start` -> a role chunk (`delta: {role: assistant, content: ""}`), not content;
- `content_block_start` of a `tool_use` block -> a tool call chunk (id, name, empty
  arguments), each tool block getting the next OpenAI tool call index;
- `content_block_delta`: `text_delta` -> content, `input_json_delta` -> tool call
  arguments; thinking and signature deltas are dropped;
- `message_delta` -> remembered stop reason and usage (nothing sent yet);
- `message_stop` -> the finish chunk (with `finish_reason` and `usage`, as OpenAI's
  final chunk does when usage is included) and `data: [DONE]`;
- `ping`, `content_block_stop` and unknown event types -> nothing (forward compatible);
- `error` -> raises the mapped `UpstreamError` (`overloaded_error` -> server error), so
  an error before any content still lets the router fall back.
A stream that ends before `message_stop` raises `UpstreamServerError` from `finish`,
unless a `message_delta` already carried the stop reason: that answer is complete, and
`finish` sends the finish chunk and `[DONE]` as `message_stop` would have.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import UpstreamServerError
from switchyard_gateway.providers import sse, upstream_errors
from switchyard_gateway.providers.anthropic_wire import (
    FINISH_REASONS,
    in_band_error,
    usage_of,
)
from switchyard_gateway.providers.base import StreamEvent, Usage

_Handler = Callable[["AnthropicStreamTranslator", dict[str, Any]], list[StreamEvent]]


class AnthropicStreamTranslator:
    """State of one translated stream: ids, tool call indexes, stop reason, usage."""

    def __init__(self, target: CompiledTarget, limits: sse.SseLimits = sse.SSE_LIMITS) -> None:
        self._target = target
        self._decoder = sse.SseDecoder(limits)
        self._done = False
        self._head: dict[str, Any] = {
            "id": "",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": target.model,
        }
        self._tool_index: dict[int, int] = {}  # content block index -> OpenAI tool call index
        self._stop_reason: str | None = None
        self._finish: str | None = None  # the OpenAI finish_reason, once message_stop came
        self._model: str | None = None
        self._usage_fields: dict[str, Any] = {}
        self.usage: Usage | None = None

    @property
    def model(self) -> str | None:
        """The model `message_start` named."""
        return self._model

    @property
    def finish_reasons(self) -> list[str]:
        """The one choice's finish reason, once the message stopped."""
        return [] if self._finish is None else [self._finish]

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Frames completed by `chunk`; raises on an `error` event or a malformed event."""
        return self._translate(self._decoder.feed(chunk))

    def finish(self) -> list[StreamEvent]:
        """The last frames; raises `UpstreamServerError` if `message_stop` never came."""
        events = self._translate(self._decoder.finish())
        if not self._done and self._stop_reason is not None:
            events.extend(self._message_stop({}))
        if not self._done:
            raise UpstreamServerError(
                "upstream stream ended before message_stop",
                target=self._target.name,
                upstream_status=200,
            )
        return events

    def _translate(self, events: list[sse.SseEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if self._done:
                break
            data = upstream_errors.stream_json(self._target, event.data)
            handler = _HANDLERS.get(event.event or str(data.get("type", "")))
            if handler is not None:
                with upstream_errors.shape_checked(
                    self._target, "a stream event of the wrong shape"
                ):
                    out.extend(handler(self, data))
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse.encode(orjson.dumps({**self._head, "choices": [choice], **extra}))

    def _message_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        message = data.get("message") or {}
        self._head["id"] = str(message.get("id", ""))
        if message.get("model"):
            self._model = str(message["model"])
        self._head["model"] = self._model or self._target.model
        if isinstance(message.get("usage"), dict):
            self._usage_fields.update(message["usage"])
        return [StreamEvent(self._chunk({"role": "assistant", "content": ""}))]

    def _block_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        block = data.get("content_block") or {}
        if block.get("type") == "tool_use":
            index = self._tool_index.setdefault(int(data.get("index", 0)), len(self._tool_index))
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [StreamEvent(self._chunk({"tool_calls": [call]}), is_content=True)]
        if block.get("type") == "text" and block.get("text"):
            return [StreamEvent(self._chunk({"content": block["text"]}), is_content=True)]
        return []

    def _block_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [StreamEvent(self._chunk({"content": delta["text"]}), is_content=True)]
        if kind == "input_json_delta" and delta.get("partial_json"):
            index = self._tool_index.get(int(data.get("index", 0)))
            if index is None:
                return []
            call = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [StreamEvent(self._chunk({"tool_calls": [call]}), is_content=True)]
        return []

    def _message_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        delta = data.get("delta") or {}
        if delta.get("stop_reason"):
            self._stop_reason = str(delta["stop_reason"])
        if isinstance(data.get("usage"), dict):
            self._usage_fields.update({k: v for k, v in data["usage"].items() if v is not None})
        self.usage = usage_of(self._usage_fields)
        return []

    def _message_stop(self, data: dict[str, Any]) -> list[StreamEvent]:
        self._done = True
        self.usage = usage_of(self._usage_fields) or Usage()
        finish = FINISH_REASONS.get(self._stop_reason or "", "stop")
        if self._stop_reason is None and self._tool_index:
            finish = "tool_calls"
        self._finish = finish
        final = self._chunk({}, finish, usage=self.usage.to_openai())
        return [StreamEvent(final), StreamEvent(sse.DONE_FRAME)]

    def _error(self, data: dict[str, Any]) -> list[StreamEvent]:
        raise in_band_error(self._target, data)


_HANDLERS: dict[str, _Handler] = {
    "message_start": AnthropicStreamTranslator._message_start,
    "content_block_start": AnthropicStreamTranslator._block_start,
    "content_block_delta": AnthropicStreamTranslator._block_delta,
    "message_delta": AnthropicStreamTranslator._message_delta,
    "message_stop": AnthropicStreamTranslator._message_stop,
    "error": AnthropicStreamTranslator._error,
}
