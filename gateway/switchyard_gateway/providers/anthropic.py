"""Anthropic adapter: OpenAI chat <-> the Messages API (`POST {base}/v1/messages`).

Requests are translated by `anthropic_request`, streams by `anthropic_stream`; this module
holds the adapter itself, the response translation and the error mapping. Headers:
`x-api-key` and `anthropic-version: 2023-06-01`. The base URL means what the Anthropic
SDK means by it (`https://api.anthropic.com`, without `/v1`).

Responses: text blocks -> `message.content` (joined), `tool_use` blocks -> `tool_calls`
(input re-encoded as the JSON `arguments` string), thinking blocks dropped; `stop_reason`
-> `finish_reason` by `FINISH_REASONS`; usage -> prompt tokens (input plus cache reads
and writes, which are all prompt) and completion tokens.

Errors: `{"type": "error", "error": {"type", "message"}}`. The status decides (529 is
`overloaded_error`, a server error); for errors inside a 200 stream, which carry no
status, the error *type* is mapped to the status Anthropic documents for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import UpstreamError
from switchyard_gateway.providers import anthropic_request, sse, upstream_errors
from switchyard_gateway.providers.anthropic_stream import AnthropicStreamTranslator
from switchyard_gateway.providers.anthropic_wire import (
    API_VERSION,
    FINISH_REASONS,
    error_fields,
    usage_of,
)
from switchyard_gateway.providers.base import ParsedResponse, UpstreamRequest, Usage
from switchyard_schema import DEFAULT_BASE_URLS, Provider, Task


def _message(content: list[Any]) -> tuple[dict[str, Any], bool]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return message, bool(calls)


class AnthropicAdapter:
    """Anthropic's Messages API: chat only (Anthropic has no embeddings API)."""

    provider: ClassVar[Provider] = Provider.ANTHROPIC
    tasks: ClassVar[frozenset[Task]] = frozenset({Task.CHAT})

    def build_request(
        self,
        target: CompiledTarget,
        task: Task,
        body: dict[str, Any],
        api_key: ApiKey | None,
        stream: bool,
    ) -> UpstreamRequest:
        """A Messages API request; raises CallerFault for what Anthropic cannot express."""
        headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION}
        if api_key is not None:
            headers["x-api-key"] = api_key.reveal()
        payload = anthropic_request.translate(target, body, stream)
        return UpstreamRequest(
            method="POST",
            url=(target.base_url or DEFAULT_BASE_URLS[Provider.ANTHROPIC]) + "/v1/messages",
            headers=headers,
            body=orjson.dumps(payload),
        )

    def parse_response(self, target: CompiledTarget, task: Task, raw: bytes) -> ParsedResponse:
        """An Anthropic Message as an OpenAI chat.completion."""
        data = upstream_errors.load_json(raw)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise upstream_errors.unparseable(target, "a 2xx body that is not a Message")
        with upstream_errors.shape_checked(target, "a Message of the wrong shape"):
            message, has_calls = _message(data["content"])
        stop_reason = data.get("stop_reason")
        finish = FINISH_REASONS.get(stop_reason or "", "stop")
        if has_calls and stop_reason is None:
            finish = "tool_calls"
        usage = usage_of(data.get("usage")) or Usage()
        body = {
            "id": str(data.get("id", "")),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(data.get("model") or target.model),
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": usage.to_openai(),
        }
        return ParsedResponse(body=orjson.dumps(body), usage=usage)

    def map_error(
        self, target: CompiledTarget, status: int, headers: Mapping[str, str], raw: bytes
    ) -> UpstreamError:
        """Status table of `upstream_errors`, with Anthropic's error type and message."""
        error_type, message = error_fields(upstream_errors.load_json(raw))
        return upstream_errors.upstream_error(
            target, status, headers, error_type=error_type, message=message
        )

    def stream_translator(self, target: CompiledTarget, task: Task,
                          limits: sse.SseLimits = sse.SSE_LIMITS) -> AnthropicStreamTranslator:
        """Translates one Messages stream into OpenAI chunks."""
        return AnthropicStreamTranslator(target, limits)
