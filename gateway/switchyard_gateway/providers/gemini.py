"""Gemini adapter: OpenAI chat and embeddings <-> the Gemini API (v1beta).

URLs: `{base}/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
`:embedContent`, `:batchEmbedContents`, base `https://generativelanguage.googleapis.com`
(what the google-genai SDK means by base URL). The key travels ONLY in the
`x-goog-api-key` header, never in the URL (URLs end up in proxy and access logs).

Requests are translated by `gemini_request`, streams by `gemini_stream`. Responses: each
candidate becomes a choice (text joined, `functionCall` parts -> `tool_calls`),
`finishReason` -> `finish_reason`, `usageMetadata` -> usage; a prompt blocked before any
candidate becomes an empty `content_filter` answer. Embeddings become OpenAI's list of
float vectors (Gemini reports no token usage for them: zeros). Errors: `gemini_wire`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import orjson

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import UpstreamError
from switchyard_gateway.providers import gemini_request, gemini_wire, sse, upstream_errors
from switchyard_gateway.providers.base import ParsedResponse, UpstreamRequest, Usage
from switchyard_gateway.providers.gemini_stream import GeminiStreamTranslator
from switchyard_schema import DEFAULT_BASE_URLS, Provider, Task


def model_url(target: CompiledTarget, method: str) -> str:
    """`{base}/v1beta/models/{model}:{method}` (the model may be written `models/x`)."""
    model = quote(target.model.removeprefix("models/"), safe="-._")
    base = target.base_url or DEFAULT_BASE_URLS[Provider.GEMINI]
    return f"{base}/v1beta/models/{model}:{method}"


def _choices(data: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = "call_" + str(data.get("responseId") or "gemini")
    choices = []
    for position, candidate in enumerate(data.get("candidates") or ()):
        if not isinstance(candidate, dict):
            continue
        index = candidate.get("index", position)
        text, calls = gemini_wire.candidate_parts(candidate, f"{prefix}_{index}")
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not calls else None,
        }
        if calls:
            message["tool_calls"] = calls
        finish = gemini_wire.finish_reason(candidate.get("finishReason"), bool(calls))
        choices.append(
            {"index": index, "message": message, "finish_reason": finish, "logprobs": None}
        )
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
        message = {"role": "assistant", "content": ""}
        choices.append(
            {"index": 0, "message": message, "finish_reason": "content_filter", "logprobs": None}
        )
    return choices


class GeminiAdapter:
    """Google's Gemini API: chat and embeddings."""

    provider: ClassVar[Provider] = Provider.GEMINI
    tasks: ClassVar[frozenset[Task]] = frozenset({Task.CHAT, Task.EMBEDDINGS})

    def build_request(
        self,
        target: CompiledTarget,
        task: Task,
        body: dict[str, Any],
        api_key: ApiKey | None,
        stream: bool,
    ) -> UpstreamRequest:
        """A Gemini request; raises CallerFault for what Gemini cannot express."""
        headers = {"Content-Type": "application/json"}
        if api_key is not None:
            headers["x-goog-api-key"] = api_key.reveal()
        if task is Task.EMBEDDINGS:
            method, payload = gemini_request.embeddings(target, body)
        else:
            method = "streamGenerateContent?alt=sse" if stream else "generateContent"
            payload = gemini_request.chat(target, body)
        return UpstreamRequest("POST", model_url(target, method), headers, orjson.dumps(payload))

    def parse_response(self, target: CompiledTarget, task: Task, raw: bytes) -> ParsedResponse:
        """A GenerateContentResponse (or embedding response) in OpenAI format."""
        data = upstream_errors.load_json(raw)
        if not isinstance(data, dict):
            raise upstream_errors.unparseable(target, "a 2xx body that is not a JSON object")
        with upstream_errors.shape_checked(target, "a 2xx body of the wrong shape"):
            if task is Task.EMBEDDINGS:
                return self._embeddings(target, data)
            return self._chat(target, data)

    def _chat(self, target: CompiledTarget, data: dict[str, Any]) -> ParsedResponse:
        if not isinstance(data.get("candidates", []), list) or (
            "candidates" not in data and "promptFeedback" not in data
        ):
            raise upstream_errors.unparseable(target, "a 2xx body without candidates")
        usage = gemini_wire.usage_of(data.get("usageMetadata")) or Usage()
        body = {
            "id": "chatcmpl-" + str(data.get("responseId") or "gemini"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(data.get("modelVersion") or target.model),
            "choices": _choices(data),
            "usage": usage.to_openai(),
        }
        return ParsedResponse(body=orjson.dumps(body), usage=usage)

    def _embeddings(self, target: CompiledTarget, data: dict[str, Any]) -> ParsedResponse:
        if isinstance(data.get("embedding"), dict):
            vectors = [data["embedding"]]
        elif isinstance(data.get("embeddings"), list):
            vectors = data["embeddings"]
        else:
            raise upstream_errors.unparseable(target, "a 2xx body without embeddings")
        items = []
        for index, vector in enumerate(vectors):
            values = vector.get("values") if isinstance(vector, dict) else None
            if not isinstance(values, list):
                raise upstream_errors.unparseable(target, "an embedding without values")
            items.append({"object": "embedding", "index": index, "embedding": values})
        body = {
            "object": "list",
            "data": items,
            "model": target.model,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }
        return ParsedResponse(body=orjson.dumps(body), usage=None)

    def map_error(
        self, target: CompiledTarget, status: int, headers: Mapping[str, str], raw: bytes
    ) -> UpstreamError:
        """Status table of `upstream_errors`, with Gemini's status name and retry delay."""
        return gemini_wire.error_from(target, status, headers, upstream_errors.load_json(raw))

    def stream_translator(self, target: CompiledTarget, task: Task,
                          limits: sse.SseLimits = sse.SSE_LIMITS) -> GeminiStreamTranslator:
        """Translates one `streamGenerateContent?alt=sse` stream into OpenAI chunks."""
        return GeminiStreamTranslator(target, limits)
