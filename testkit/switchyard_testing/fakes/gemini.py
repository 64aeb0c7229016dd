"""A fake Gemini API (v1beta): generateContent, streamGenerateContent?alt=sse, embeddings.

Bodies follow `google.genai.types` (checked by tests/integration/test_fakes_conform.py).
The key is accepted only from the `x-goog-api-key` header: a key sent as `?key=` in the
URL counts as no key (401 when the fake expects one), so tests prove where it travels.
An invalid key is answered as Gemini really does: 400 INVALID_ARGUMENT with an
`API_KEY_INVALID` ErrorInfo. A 429 carries a `RetryInfo` detail too. Gemini's first
stream event already carries text, so a fault "before any content" needs `after_frames=0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from aiohttp import web

from switchyard_testing.fakes.script import Behaviour
from switchyard_testing.fakes.server import FakeProvider, Operation, sse_frame

EMBEDDING_DIMENSIONS = 8
TOOL_ARGS: dict[str, Any] = {"fake": True}

_ERRORS: dict[int, tuple[int, str, str]] = {  # scripted status -> code, status, message
    400: (400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
    401: (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    429: (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: (500, "INTERNAL", "An internal error has occurred."),
    503: (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
}


def _tool_call_wanted(payload: dict[str, Any]) -> bool:
    contents = payload.get("contents") or [{}]
    parts = contents[-1].get("parts") or [] if isinstance(contents[-1], dict) else []
    answered = any(isinstance(p, dict) and "functionResponse" in p for p in parts)
    mode = ((payload.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    return bool(payload.get("tools")) and not answered and mode != "NONE"


class FakeGemini(FakeProvider):
    """Gemini's wire format."""

    wire: ClassVar[str] = "gemini"
    malformed_body: ClassVar[bytes] = b'{"candidates": [{"content": '
    malformed_frame: ClassVar[bytes] = b'data: {"candidates": [\n\n'

    def routes(self) -> list[web.RouteDef]:
        """`/v1beta/models/{model}:{method}`."""

        async def model_method(request: web.Request) -> web.StreamResponse:
            _, _, method = request.match_info["target"].partition(":")
            return await self.handle(request, method)

        return [web.post("/v1beta/models/{target}", model_method)]

    def operation(self, request: web.Request, name: str, payload: dict[str, Any]) -> Operation:
        """Model from the path; streaming for streamGenerateContent."""
        model = request.match_info["target"].partition(":")[0]
        return Operation(
            name=name, model=model, stream=name == "streamGenerateContent", payload=payload
        )

    def api_key(self, request: web.Request) -> str | None:
        """The `x-goog-api-key` header only."""
        return request.headers.get("x-goog-api-key")

    def wire_status(self, status: int) -> int:
        """Gemini answers a bad key with 400."""
        return _ERRORS[status][0] if status in _ERRORS else status

    def error_body(self, status: int, behaviour: Behaviour) -> bytes:
        """`{"error": {code, message, status, details}}`."""
        code, name, message = _ERRORS.get(status, (status, "INTERNAL", "Internal error."))
        error: dict[str, Any] = {"code": code, "message": message, "status": name}
        if status == 401:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ]
        elif status == 429:
            delay = f"{behaviour.retry_after:g}s"
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
            ]
        return orjson.dumps({"error": error})

    def in_band_error_frame(self) -> bytes:
        """An error object as a stream event."""
        return sse_frame(self.error_body(503, Behaviour()))

    def _response(
        self, op: Operation, parts: list[dict[str, Any]], finish: str | None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        prompt = 5 + len(orjson.dumps(op.payload.get("contents") or "")) // 8
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": 7,
            "totalTokenCount": prompt + 7,
        }
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": op.model,
            "responseId": "fake-response",
        }

    def _parts(self, op: Operation) -> list[dict[str, Any]]:
        if _tool_call_wanted(op.payload):
            name = op.payload["tools"][0]["functionDeclarations"][0]["name"]
            return [{"functionCall": {"name": name, "args": TOOL_ARGS}}]
        return [{"text": self.reply_text(op)}]

    def success_body(self, op: Operation) -> bytes:
        """A GenerateContentResponse, or an embedding response."""
        if op.name == "embedContent":
            return orjson.dumps({"embedding": {"values": _vector(0)}})
        if op.name == "batchEmbedContents":
            count = len(op.payload.get("requests") or ())
            return orjson.dumps({"embeddings": [{"values": _vector(i)} for i in range(count)]})
        return orjson.dumps(self._response(op, self._parts(op), "STOP"))

    def stream_frames(self, op: Operation) -> Sequence[bytes]:
        """One response per word (or one functionCall); the last carries finishReason."""
        parts = self._parts(op)
        if "text" in parts[0]:
            words = parts[0]["text"].split(" ")
            pieces = [[{"text": w if i == 0 else " " + w}] for i, w in enumerate(words)]
        else:
            pieces = [parts]
        frames = [self._response(op, piece, None) for piece in pieces]
        frames[-1]["candidates"][0]["finishReason"] = "STOP"
        return [sse_frame(orjson.dumps(frame)) for frame in frames]


def _vector(index: int) -> list[float]:
    return [round(0.1 * (index + 1) + 0.01 * d, 4) for d in range(EMBEDDING_DIMENSIONS)]
