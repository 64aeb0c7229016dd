"""A fake OpenAI API: chat, completions and embeddings, plain and streaming.

Also serves Azure's deployment paths (`/openai/deployments/{deployment}/...`, key in
`api-key`), and stands in for Mistral and any OpenAI-compatible server, which speak the
same format. Bodies follow `openai.types` (checked by tests/integration/test_fakes_conform.py).
A chat request with `tools` (and `tool_choice` other than "none") whose last message is not
a tool result gets a call to its first tool, so tool round trips can be tested.
"""

from __future__ import annotations

import base64
import dataclasses
import struct
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from aiohttp import web

from switchyard_testing.fakes.script import Behaviour, Fault
from switchyard_testing.fakes.server import DONE_FRAME, FakeProvider, Operation
from switchyard_testing.fakes.server import sse_frame as encode

CREATED = 1_700_000_000
EMBEDDING_DIMENSIONS = 8
TOOL_ARGUMENTS = '{"fake": true}'

_ERRORS: dict[int, tuple[str, str, str | None]] = {  # status -> message, type, code
    400: ("Invalid request: 'messages' is a required property.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}
#: Faults with their own 400 body: message, type, param, code (as OpenAI sends them).
_FAULT_ERRORS: dict[Fault, tuple[str, str, str | None, str]] = {
    Fault.CONTEXT_LENGTH: (
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens. Please reduce the length of the messages.",
        "invalid_request_error", "messages", "context_length_exceeded"),
    Fault.CONTENT_FILTER: (
        "Your request was rejected as a result of our safety system.",
        "invalid_request_error", "prompt", "content_policy_violation"),
}


def tool_call_wanted(payload: dict[str, Any]) -> bool:
    """Whether a chat request should be answered with a tool call."""
    tools = payload.get("tools")
    messages = payload.get("messages") or [{}]
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    return bool(tools) and payload.get("tool_choice") != "none" and last.get("role") != "tool"


def first_tool_name(payload: dict[str, Any]) -> str:
    """The name of the request's first function tool."""
    return str(payload["tools"][0]["function"]["name"])


class FakeOpenAI(FakeProvider):
    """OpenAI's (and Azure's, Mistral's) wire format."""

    wire: ClassVar[str] = "openai"

    @property
    def base_url(self) -> str:
        """OpenAI SDKs' base URL includes `/v1`. (Azure targets use `.url`.)"""
        return self.url + "/v1"

    def routes(self) -> list[web.RouteDef]:
        """OpenAI's and Azure's paths for the three tasks."""
        routes = []
        for name, path in (
            ("chat", "chat/completions"),
            ("completions", "completions"),
            ("embeddings", "embeddings"),
        ):
            routes.append(web.post(f"/v1/{path}", self._handler(name)))
            routes.append(
                web.post(f"/openai/deployments/{{deployment}}/{path}", self._handler(name))
            )
        return routes

    def _handler(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self.handle(request, name)

        return handler

    def operation(self, request: web.Request, name: str, payload: dict[str, Any]) -> Operation:
        """Model from the Azure deployment path, else from the body."""
        model = request.match_info.get("deployment") or str(payload.get("model", ""))
        stream = bool(payload.get("stream")) and name != "embeddings"
        return Operation(name=name, model=model, stream=stream, payload=payload)

    def api_key(self, request: web.Request) -> str | None:
        """`Authorization: Bearer` (OpenAI, Mistral) or `api-key` (Azure)."""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        return request.headers.get("api-key")

    def error_body(self, status: int, behaviour: Behaviour) -> bytes:
        """OpenAI's `{"error": {message, type, param, code}}`."""
        special = _FAULT_ERRORS.get(behaviour.fault)
        if special is not None:
            message, type_, param, code_ = special
            return orjson.dumps(
                {"error": {"message": message, "type": type_, "param": param, "code": code_}}
            )
        message, type_, code = _ERRORS.get(status, _ERRORS[500])
        return orjson.dumps(
            {"error": {"message": message, "type": type_, "param": None, "code": code}}
        )

    def in_band_error_frame(self) -> bytes:
        """An error object in a data line, as OpenAI sends mid-stream."""
        return encode(self.error_body(500, Behaviour()))

    def _usage(self, op: Operation, completion: int) -> dict[str, int]:
        prompt = (
            5 + len(orjson.dumps(op.payload.get("messages") or op.payload.get("prompt") or "")) // 8
        )
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def success_body(self, op: Operation) -> bytes:
        """A chat.completion, text_completion or embeddings list."""
        if op.name == "embeddings":
            return self._embeddings(op)
        text = self.reply_text(op)
        usage = self._usage(op, len(text.split()))
        if op.name == "completions":
            choice: dict[str, Any] = {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": "stop",
            }
            return orjson.dumps(
                {
                    "id": "cmpl-fake",
                    "object": "text_completion",
                    "created": CREATED,
                    "model": op.model,
                    "choices": [choice],
                    "usage": usage,
                }
            )
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish = "stop"
        if tool_call_wanted(op.payload):
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": "call_fake_1",
                    "type": "function",
                    "function": {"name": first_tool_name(op.payload), "arguments": TOOL_ARGUMENTS},
                }
            ]
            finish = "tool_calls"
        return orjson.dumps(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": CREATED,
                "model": op.model,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": usage,
                "system_fingerprint": "fp_fake",
            }
        )

    def _embeddings(self, op: Operation) -> bytes:
        raw = op.payload.get("input")
        count = len(raw) if isinstance(raw, list) and raw and not isinstance(raw[0], int) else 1
        as_base64 = op.payload.get("encoding_format") == "base64"
        data = []
        for index in range(count):
            vector = [round(0.1 * (index + 1) + 0.01 * d, 4) for d in range(EMBEDDING_DIMENSIONS)]
            embedding: Any = vector
            if as_base64:
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = 3 * count
        return orjson.dumps(
            {
                "object": "list",
                "data": data,
                "model": op.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    def stream_frames(self, op: Operation) -> Sequence[bytes]:
        """Role chunk, content (or tool call) chunks, finish chunk, usage if asked, [DONE]."""
        chat = op.name == "chat"
        object_ = "chat.completion.chunk" if chat else "text_completion"
        head = {
            "id": "chatcmpl-fake" if chat else "cmpl-fake",
            "object": object_,
            "created": CREATED,
            "model": op.model,
        }

        def frame(choice: dict[str, Any], **extra: Any) -> bytes:
            return encode(
                orjson.dumps(
                    {**head, "choices": [{"index": 0, "logprobs": None, **choice}], **extra}
                )
            )

        def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
            if chat:
                return frame({"delta": content, "finish_reason": finish})
            return frame({"text": content.get("content", ""), "finish_reason": finish})

        text = self.reply_text(op)
        words = text.split(" ")
        frames = [delta({"role": "assistant", "content": ""})]
        finish = "stop"
        if chat and tool_call_wanted(op.payload):
            call = {
                "index": 0,
                "id": "call_fake_1",
                "type": "function",
                "function": {"name": first_tool_name(op.payload), "arguments": ""},
            }
            frames.append(delta({"tool_calls": [call]}))
            frames.append(
                delta({"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGUMENTS}}]})
            )
            finish = "tool_calls"
        else:
            frames.extend(delta({"content": w if i == 0 else " " + w}) for i, w in enumerate(words))
        frames.append(delta({}, finish))
        options = op.payload.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage_chunk: dict[str, Any] = {
                **head,
                "choices": [],
                "usage": self._usage(op, len(words)),
            }
            frames.append(encode(orjson.dumps(usage_chunk)))
        frames.append(DONE_FRAME)
        return frames


class FakeMistral(FakeOpenAI):
    """Mistral: OpenAI's wire format, but a stream's last chunk carries `usage` whether or
    not it was asked for (Mistral refuses `stream_options`; the gateway drops it)."""

    def stream_frames(self, op: Operation) -> Sequence[bytes]:
        """As OpenAI's, always with the usage chunk."""
        payload = {**op.payload, "stream_options": {"include_usage": True}}
        return super().stream_frames(dataclasses.replace(op, payload=payload))
