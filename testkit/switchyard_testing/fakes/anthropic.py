"""A fake Anthropic Messages API (`POST /v1/messages`), plain and streaming.

Bodies follow `anthropic.types` (checked by tests/integration/test_fakes_conform.py): a
`Message`, the stream's named events (message_start, content_block_*, ping,
message_delta, message_stop) and the error shape `{"type": "error", "error": {...}}`,
529 `overloaded_error` included. A request with `tools` whose last turn is not a tool
result gets a `tool_use` of its first tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from aiohttp import web

from switchyard_testing.fakes.script import Behaviour
from switchyard_testing.fakes.server import FakeProvider, Operation, sse_frame

TOOL_INPUT: dict[str, Any] = {"fake": True}

_ERRORS: dict[int, tuple[str, str]] = {  # status -> type, message
    400: ("invalid_request_error", "messages: field required"),
    401: ("authentication_error", "invalid x-api-key"),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _tool_call_wanted(payload: dict[str, Any]) -> bool:
    messages = payload.get("messages") or [{}]
    content = messages[-1].get("content") if isinstance(messages[-1], dict) else None
    answered = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
    choice = payload.get("tool_choice") or {}
    return bool(payload.get("tools")) and not answered and choice.get("type") != "none"


class FakeAnthropic(FakeProvider):
    """Anthropic's wire format."""

    wire: ClassVar[str] = "anthropic"
    malformed_body: ClassVar[bytes] = b'{"id": "msg_broken", "content": ['
    malformed_frame: ClassVar[bytes] = b"event: content_block_delta\ndata: {broken\n\n"

    def routes(self) -> list[web.RouteDef]:
        """The Messages endpoint."""

        async def messages(request: web.Request) -> web.StreamResponse:
            return await self.handle(request, "messages")

        return [web.post("/v1/messages", messages)]

    def operation(self, request: web.Request, name: str, payload: dict[str, Any]) -> Operation:
        """Model and stream flag from the body."""
        model = str(payload.get("model", ""))
        return Operation(
            name=name, model=model, stream=bool(payload.get("stream")), payload=payload
        )

    def api_key(self, request: web.Request) -> str | None:
        """The `x-api-key` header."""
        return request.headers.get("x-api-key")

    def error_body(self, status: int, behaviour: Behaviour) -> bytes:
        """Anthropic's error shape."""
        type_, message = _ERRORS.get(status, _ERRORS[500])
        error = {"type": "error", "error": {"type": type_, "message": message}}
        return orjson.dumps({**error, "request_id": "req_fake"})

    def in_band_error_frame(self) -> bytes:
        """`event: error` with an overloaded_error, as Anthropic sends under load."""
        data = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return sse_frame(orjson.dumps(data), "error")

    def _input_tokens(self, op: Operation) -> int:
        return 5 + len(orjson.dumps(op.payload.get("messages") or "")) // 8

    def _content(self, op: Operation) -> tuple[list[dict[str, Any]], str]:
        if _tool_call_wanted(op.payload):
            name = op.payload["tools"][0]["name"]
            block = {"type": "tool_use", "id": "toolu_fake_1", "name": name, "input": TOOL_INPUT}
            return [block], "tool_use"
        return [{"type": "text", "text": self.reply_text(op)}], "end_turn"

    def success_body(self, op: Operation) -> bytes:
        """A complete `Message`."""
        content, stop_reason = self._content(op)
        usage = {"input_tokens": self._input_tokens(op), "output_tokens": 7}
        return orjson.dumps(
            {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": op.model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": usage,
            }
        )

    def stream_frames(self, op: Operation) -> Sequence[bytes]:
        """message_start, one content block with deltas, message_delta, message_stop."""

        def event(name: str, data: dict[str, Any]) -> bytes:
            return sse_frame(orjson.dumps({"type": name, **data}), name)

        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": op.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens(op), "output_tokens": 1},
        }
        content, stop_reason = self._content(op)
        block = content[0]
        frames = [event("message_start", {"message": message})]
        if block["type"] == "tool_use":
            start = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in ('{"fake"', ": true}")
            ]
        else:
            start = {"type": "text", "text": ""}
            words = block["text"].split(" ")
            deltas = [
                {"type": "text_delta", "text": w if i == 0 else " " + w}
                for i, w in enumerate(words)
            ]
        frames.append(event("content_block_start", {"index": 0, "content_block": start}))
        frames.append(event("ping", {}))
        frames.extend(event("content_block_delta", {"index": 0, "delta": d}) for d in deltas)
        frames.append(event("content_block_stop", {"index": 0}))
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        frames.append(event("message_delta", {"delta": delta, "usage": {"output_tokens": 7}}))
        frames.append(event("message_stop", {}))
        return frames
