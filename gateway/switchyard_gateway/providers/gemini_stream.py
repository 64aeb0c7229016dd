"""Gemini `streamGenerateContent?alt=sse` -> OpenAI `chat.completion.chunk` frames.

Created by `GeminiAdapter.stream_translator`. Each upstream event is a whole
GenerateContentResponse holding the next piece of each candidate: its text becomes a
content delta (the first chunk also carries the assistant role), each `functionCall` a
complete tool call delta (Gemini sends calls whole). `usageMetadata` is cumulative, so
the last one counts. Gemini has no end-of-stream event: the stream is complete when every
candidate seen has sent a `finishReason` and the connection then ends cleanly; `finish`
emits the finish chunks (with usage) and `data: [DONE]` at that point, and raises
`UpstreamServerError` for a stream that ended before a finishReason. An `{"error": ...}`
event raises the mapped error (its `code` read as the status).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import UpstreamServerError
from switchyard_gateway.providers import gemini_wire, sse, upstream_errors
from switchyard_gateway.providers.base import StreamEvent, Usage


class GeminiStreamTranslator:
    """State of one translated stream: per-candidate role sent, tool call counts, finish."""

    def __init__(self, target: CompiledTarget, limits: sse.SseLimits = sse.SSE_LIMITS) -> None:
        self._target = target
        self._decoder = sse.SseDecoder(limits)
        self._head: dict[str, Any] = {
            "id": "chatcmpl-gemini",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": target.model,
        }
        self._calls: dict[int, int] = {}  # candidate index -> tool calls sent
        self._finish: dict[int, str] = {}  # candidate index -> OpenAI finish_reason
        self._ended = False
        self._model: str | None = None
        self.usage: Usage | None = None

    @property
    def model(self) -> str | None:
        """The `modelVersion` the stream named."""
        return self._model

    @property
    def finish_reasons(self) -> list[str]:
        """The finish reasons seen, by candidate index."""
        return [self._finish[i] for i in sorted(self._finish)]

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Frames completed by `chunk`; raises on an error event or a malformed event."""
        return self._translate(self._decoder.feed(chunk))

    def finish(self) -> list[StreamEvent]:
        """Finish chunks and `[DONE]`; raises `UpstreamServerError` if no finishReason came."""
        events = self._translate(self._decoder.finish())
        if not self._finish or set(self._calls) - set(self._finish):
            raise UpstreamServerError(
                "upstream stream ended before a finishReason",
                target=self._target.name,
                upstream_status=200,
            )
        usage = self.usage or Usage()
        self.usage = usage
        for index, reason in sorted(self._finish.items()):
            extra = {"usage": usage.to_openai()} if index == max(self._finish) else {}
            events.append(StreamEvent(self._chunk(index, {}, reason, **extra)))
        events.append(StreamEvent(sse.DONE_FRAME))
        return events

    def _chunk(
        self, index: int, delta: dict[str, Any], finish: str | None = None, **extra: Any
    ) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse.encode(orjson.dumps({**self._head, "choices": [choice], **extra}))

    def _translate(self, events: list[sse.SseEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            data = upstream_errors.stream_json(self._target, event.data)
            if "error" in data:
                error = data["error"]
                code = error.get("code") if isinstance(error, dict) else None
                status = code if isinstance(code, int) and code >= 400 else 500
                raise gemini_wire.error_from(self._target, status, {}, data)
            if data.get("responseId"):
                self._head["id"] = "chatcmpl-" + str(data["responseId"])
            if data.get("modelVersion"):
                self._model = self._head["model"] = str(data["modelVersion"])
            if isinstance(data.get("usageMetadata"), dict):
                self.usage = gemini_wire.usage_of(data["usageMetadata"])
            with upstream_errors.shape_checked(self._target, "a stream event of the wrong shape"):
                for position, candidate in enumerate(data.get("candidates") or ()):
                    if isinstance(candidate, dict):
                        out.extend(
                            self._candidate(int(candidate.get("index", position)), candidate)
                        )
        return out

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[StreamEvent]:
        first = index not in self._calls
        sent = self._calls.setdefault(index, 0)
        prefix = f"{self._head['id'].replace('chatcmpl-', 'call_')}_{index}"
        text, calls = gemini_wire.candidate_parts(candidate, prefix, first_call=sent)
        delta: dict[str, Any] = {"role": "assistant"} if first else {}
        if text:
            delta["content"] = text
        elif first:
            delta["content"] = ""
        if calls:
            for offset, call in enumerate(calls):
                call["index"] = sent + offset
            delta["tool_calls"] = calls
            self._calls[index] = sent + len(calls)
        out = []
        if delta:
            out.append(StreamEvent(self._chunk(index, delta), is_content=bool(text or calls)))
        if candidate.get("finishReason"):
            has_calls = self._calls[index] > 0
            self._finish[index] = gemini_wire.finish_reason(candidate["finishReason"], has_calls)
        return out
