"""Status code -> error type, Retry-After parsing and the OpenAI error body, shared by adapters.

Every adapter's `map_error` extracts the provider's structured error (type, code, message)
from its own body shape and then calls `upstream_error` here, so the status table lives in
one place. Decisions are made on the status (and, for in-band stream errors, on the
provider's error *type*), never on message text.

The status table, beyond the fixed contract (429, 5xx/529, 401/403/404, 400/413/422):
- 408 -> `UpstreamTimeout`: the provider gave up waiting, which is a timeout of this attempt.
- 409 -> `UpstreamServerError`: a transient conflict on the provider's side (OpenAI's own
  SDK retries 408, 409, 429 and 5xx).
- 402, 410 -> `ProviderAuthError`: billing/quota exhausted or a retired model; the
  platform team must act, the caller cannot.
- any other 4xx (405, 415, ...) or a non-2xx below 400 -> `UpstreamServerError`: the
  gateway's request does not suit this upstream; the caller cannot fix that, another
  target may serve.

Context length: a 400 whose structured `code` is `context_length_exceeded` (OpenAI, Azure
OpenAI, and the OpenAI-compatible servers that copy its error shape) becomes
`ContextLengthExceeded`, which `policy.fallbackOn: [contextLength]` may send to a larger
model. Anthropic (`invalid_request_error`, "prompt is too long: N tokens > M maximum") and
Gemini (`INVALID_ARGUMENT`, "The input token count (N) exceeds the maximum number of tokens
allowed (M)") name the condition only in message text, which this module never matches:
their 400 stays a plain caller fault, passed through with the provider's type.

Messages: only a `CallerFault` carries the provider's message (the router scrubs it of
key material, then cuts it short), because the caller needs it to fix the request. Other
errors name status and error type only: provider messages for auth failures can echo part
of the key, and rate-limit messages name the platform's organisation.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import (
    CallerFault,
    ContextLengthExceeded,
    ProviderAuthError,
    RateLimited,
    UpstreamError,
    UpstreamServerError,
    UpstreamTimeout,
)

#: The provider `code` that marks a prompt over the model's context window.
CONTEXT_LENGTH_CODE = "context_length_exceeded"

_BY_STATUS: dict[int, type[UpstreamError]] = {
    400: CallerFault,
    413: CallerFault,
    422: CallerFault,
    401: ProviderAuthError,
    402: ProviderAuthError,
    403: ProviderAuthError,
    404: ProviderAuthError,
    410: ProviderAuthError,
    408: UpstreamTimeout,
    409: UpstreamServerError,
    429: RateLimited,
}


def error_class(status: int) -> type[UpstreamError]:
    """The error type for a non-2xx status (see the module docstring for the table)."""
    return _BY_STATUS.get(status, UpstreamServerError)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name (aiohttp's headers are; a plain dict is not)."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI) or `retry-after` (seconds or HTTP date).

    Returns None when neither header is present or parseable; never a negative number.
    """
    millis = header(headers, "retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = header(headers, "retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def load_json(raw: bytes) -> Any:
    """Parse a body, or None when it is not JSON (an error page from a proxy, say)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def text(value: object) -> str:
    """A provider field as text: strings as they are, structures as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def upstream_error(
    target: CompiledTarget,
    status: int,
    headers: Mapping[str, str],
    *,
    error_type: str = "",
    code: str | None = None,
    message: str = "",
    param: str | None = None,
    retry_after_seconds: float | None = None,
) -> UpstreamError:
    """Build the error for a non-2xx upstream answer.

    `retry_after_seconds` overrides the headers (for providers that put it in the body).
    A caller fault keeps the provider's `type`, `code` and `param` for the caller.
    """
    cls = error_class(status)
    label = error_type or code or "no error type"
    if cls is CallerFault:
        fault = ContextLengthExceeded if code == CONTEXT_LENGTH_CODE else CallerFault
        return fault(
            # Not cut here: the router scrubs key material out of the whole message
            # first and cuts it then (a cut first could split an echoed key).
            f"provider rejected the request ({status} {label}): {message}",
            upstream_status=status,
            target=target.name,
            provider_type=error_type or None,
            provider_code=code,
            provider_param=param,
        )
    wait = retry_after_seconds if retry_after_seconds is not None else retry_after(headers)
    return cls(
        f"upstream answered {status} ({label})",
        target=target.name,
        upstream_status=status,
        retry_after=wait,
    )


def unparseable(target: CompiledTarget, what: str) -> UpstreamServerError:
    """A 2xx body (or stream event) that cannot be understood: a server error."""
    return UpstreamServerError(f"upstream sent {what}", target=target.name, upstream_status=200)


def stream_json(target: CompiledTarget, data: bytes) -> dict[str, Any]:
    """A stream event's data as a JSON object; raises `UpstreamServerError` otherwise."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise unparseable(target, "a malformed stream event") from None
    if not isinstance(value, dict):
        raise unparseable(target, "a stream event that is not a JSON object")
    return value


@contextlib.contextmanager
def shape_checked(target: CompiledTarget, what: str) -> Iterator[None]:
    """Turn a provider body of the wrong shape (a string where an object belongs, say)
    into `UpstreamServerError` while translating it, instead of a crash."""
    try:
        yield
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise unparseable(target, what) from error
