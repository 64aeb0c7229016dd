"""Facts about Gemini's wire format shared by the adapter and its stream translator.

Finish reasons, usage, the parts of a candidate, and the error body
(`{"error": {"code", "message", "status", "details"}}`). Used by `gemini.py` and
`gemini_stream.py`; pure code.

Error quirks, decided on structured fields only: Gemini answers an invalid key with 400
`INVALID_ARGUMENT` whose details carry an `ErrorInfo` with reason `API_KEY_INVALID`; that
is treated as 401 (a platform problem, not the caller's). A 429 may carry its wait in a
`RetryInfo` detail (`"retryDelay": "37s"`), used when no Retry-After header came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import UpstreamError
from switchyard_gateway.providers import upstream_errors
from switchyard_gateway.providers.base import Usage

FINISH_REASONS: Mapping[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}

_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def usage_of(value: object) -> Usage | None:
    """`usageMetadata` as `Usage` (thinking tokens count as completion tokens)."""
    if not isinstance(value, dict):
        return None

    def count(key: str) -> int:
        number = value.get(key)
        return number if isinstance(number, int) else 0

    return Usage(
        prompt_tokens=count("promptTokenCount"),
        completion_tokens=count("candidatesTokenCount") + count("thoughtsTokenCount"),
    )


def finish_reason(reason: object, has_calls: bool) -> str:
    """OpenAI's finish_reason for a Gemini finishReason."""
    if has_calls:
        return "tool_calls"
    return FINISH_REASONS.get(str(reason), "stop")


def candidate_parts(
    candidate: dict[str, Any], call_id_prefix: str, first_call: int = 0
) -> tuple[str, list[dict[str, Any]]]:
    """(text, OpenAI tool_calls) of one candidate; thought parts are dropped.

    Gemini function calls carry no id (newer models may send one): an id is made from
    `call_id_prefix` and the call's position (counted from `first_call`), unique within
    the response.
    """
    content = candidate.get("content") or {}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in content.get("parts") or ():
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            calls.append(
                {
                    "id": str(call.get("id") or f"{call_id_prefix}_{first_call + len(calls)}"),
                    "type": "function",
                    "function": {
                        "name": call.get("name"),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
    return "".join(texts), calls


def _duration(value: object) -> float | None:
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(0.0, float(value[:-1]))
        except ValueError:
            return None
    return None


def error_from(
    target: CompiledTarget, status: int, headers: Mapping[str, str], data: object
) -> UpstreamError:
    """The error for a Gemini error body (or an error object inside a stream)."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return upstream_errors.upstream_error(target, status, headers)
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    if status == 400 and any(d.get("reason") in _KEY_REASONS for d in details):
        status = 401
    delay = next(
        (_duration(d.get("retryDelay")) for d in details if d.get("@type") == _RETRY_INFO), None
    )
    wait = upstream_errors.retry_after(headers)
    return upstream_errors.upstream_error(
        target,
        status,
        headers,
        error_type=upstream_errors.text(error.get("status")),
        message=upstream_errors.text(error.get("message")),
        retry_after_seconds=wait if wait is not None else delay,
    )
