"""Facts about Anthropic's wire format shared by the adapter and its stream translator.

Stop reasons, error types and their statuses, usage. Pure data and small functions; used by
`anthropic.py` and `anthropic_stream.py`.
"""

from __future__ import annotations

from collections.abc import Mapping

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import UpstreamError
from switchyard_gateway.providers import upstream_errors
from switchyard_gateway.providers.base import Usage

API_VERSION = "2023-06-01"

FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: Anthropic's documented status for each error type (https://docs.anthropic.com/en/api/errors).
STATUS_OF_ERROR_TYPE: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def usage_of(value: object) -> Usage | None:
    """Anthropic's `usage` (input, cache and output tokens) as `Usage`."""
    if not isinstance(value, dict):
        return None
    prompt = sum(
        value.get(k) or 0
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        if isinstance(value.get(k) or 0, int)
    )
    output = value.get("output_tokens")
    return Usage(prompt_tokens=prompt, completion_tokens=output if isinstance(output, int) else 0)


def error_fields(data: object) -> tuple[str, str]:
    """(type, message) from Anthropic's error body or `error` event data."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return upstream_errors.text(error.get("type")), upstream_errors.text(error.get("message"))


def in_band_error(target: CompiledTarget, data: object) -> UpstreamError:
    """The error for an `event: error` inside a 200 stream, by its error type."""
    error_type, message = error_fields(data)
    status = STATUS_OF_ERROR_TYPE.get(error_type, 500)
    return upstream_errors.upstream_error(
        target, status, {}, error_type=error_type, message=message
    )
