"""The gateway's error tree: every failure a request can meet, as a type.

Bottom layer: providers raise the upstream errors, the router decides on them with
`isinstance` (never by message text), and the HTTP layer (`http/errors.py`) renders any
`GatewayError` as OpenAI-style JSON. Class attributes carry the HTTP status and the
OpenAI `type`/`code`, as aiohttp's `web_exceptions` do. Messages never hold key material,
upstream headers, or more than a short cut of an upstream body.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from switchyard_schema import FailureKind

#: Upstream error text is cut to this many characters before it reaches a log line or an
#: error body: enough to explain the failure, too short to echo a whole upstream payload.
DETAIL_LIMIT = 300


#: Retry-After (seconds) of a 429 when neither a provider nor a cooldown says when to come
#: back (a provider's 429 without Retry-After, below the cooldown threshold): one second,
#: the shortest value the header can express, so a client backs off without waiting long.
DEFAULT_RETRY_AFTER = 1.0


def cut(text: str, limit: int = DETAIL_LIMIT) -> str:
    """Shorten text for logs and error bodies. Upstream text is scrubbed of keys first
    (`redaction.Redactor.scrub` cuts after scrubbing): cutting never removes a key."""
    return text if len(text) <= limit else text[:limit] + "..."


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Caller errors: the request itself is wrong. Never retried, never fall back.


class CallerError(GatewayError):
    """The caller's request is at fault."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class InvalidRequest(CallerError):
    """Malformed JSON, a missing field, a wrong type."""


class MalformedRequest(CallerError):
    """The request head is not valid HTTP/1.1 (refused by aiohttp's parser). The message
    says what was wrong in the gateway's words, never with the request's bytes."""

    code = "malformed_request"


class UnknownEndpoint(CallerError):
    """`model` names no endpoint this gateway serves."""

    status = 404
    code = "model_not_found"


class BodyTooLarge(CallerError):
    """The request body is over the configured limit."""

    status = 413
    code = "request_too_large"


class RequestTimeout(CallerError):
    """The request body did not arrive in time (a slow or stalled client)."""

    status = 408
    code = "request_timeout"


class Unauthorized(CallerError):
    """Inbound authentication is on and the bearer token is missing or wrong."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(CallerError):
    """The caller is authenticated but may not use this endpoint (`--auth kubernetes`).

    The same answer whether or not the endpoint exists: a caller who may not use it must
    not learn which names are taken.
    """

    status = 403
    type = "permission_error"
    code = "permission_denied"


class Overloaded(GatewayError):
    """Load shedding: too many requests in flight (gateway-wide or for the endpoint)."""

    status = 503
    type = "server_error"
    code = "overloaded"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthUnavailable(GatewayError):
    """The API server cannot review an unknown caller right now: fail closed, retry later."""

    status = 503
    type = "server_error"
    code = "auth_unavailable"

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Upstream errors: one attempt at one target failed.


class UpstreamError(GatewayError):
    """An attempt at a target failed. `kind` is what `policy.fallbackOn` matches."""

    status = 502
    code = "upstream_error"
    kind: ClassVar[FailureKind | None] = None

    def __init__(
        self,
        message: str,
        *,
        target: str = "",
        upstream_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.target = target
        self.upstream_status = upstream_status
        self.retry_after = retry_after


class RateLimited(UpstreamError):
    """429 (or the provider's equivalent); may carry Retry-After."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limited"
    kind = FailureKind.RATE_LIMIT


class UpstreamServerError(UpstreamError):
    """5xx, Anthropic's 529, or a 200 whose body cannot be parsed."""

    kind = FailureKind.SERVER_ERROR


class UpstreamTimeout(UpstreamError):
    """No response (or no stream event) in time."""

    status = 504
    code = "upstream_timeout"
    kind = FailureKind.TIMEOUT


class UpstreamConnectionError(UpstreamError):
    """Refused, reset, DNS or TLS failure before a response."""

    code = "upstream_connection_error"
    kind = FailureKind.CONNECTION_ERROR


class UpstreamOverloaded(UpstreamConnectionError):
    """The gateway's own connections to the target's origin are all busy and none became
    free within the capacity wait: nothing was sent. A `connectionError` (the policy falls
    back), but not the target's fault, so it does not count toward cooldown; when it is
    the last failure the answer is 503 with Retry-After."""

    status = 503
    code = "upstream_overloaded"


class ProviderAuthError(UpstreamError):
    """The provider's 401/403/404: a revoked key or a retired model, the platform's problem.

    Never shown to the caller as a 401 (it would blame the caller's own credentials).
    """

    code = "provider_auth_error"
    kind = FailureKind.PROVIDER_AUTH


class MissingCredential(ProviderAuthError):
    """The target's key reference cannot be resolved (missing Secret, key or env var).

    Raised before any request is sent, so it is not counted as an attempt.
    """

    code = "missing_credential"


class CallerFault(UpstreamError):
    """The provider rejected the request as the caller's fault (400, 413, 422).

    Passed through to the caller with the provider's status, message, type, code and
    param; never retried, never falls back (`ContextLengthExceeded` may, when named).
    """

    status = 400
    type = "invalid_request_error"
    code = "upstream_rejected_request"

    def __init__(
        self, message: str, *, upstream_status: int, target: str = "",
        provider_type: str | None = None, provider_code: str | None = None,
        provider_param: str | None = None,
    ) -> None:
        super().__init__(message, target=target, upstream_status=upstream_status)
        #: The provider's own error `type`, `code` and `param`, passed to the caller (the
        #: router scrubs them of key material like the message): the caller needs
        #: `context_length_exceeded` or `content_policy_violation`, not a generic code.
        self.provider_type = provider_type
        self.provider_code = provider_code
        self.provider_param = provider_param


class ContextLengthExceeded(CallerFault):
    """The provider said the prompt is over the model's context window, in a structured
    field (OpenAI's `code: context_length_exceeded`). A caller fault that may fall back,
    but only when `policy.fallbackOn` names `contextLength`: a larger model can serve it."""

    code = "context_length_exceeded"
    kind = FailureKind.CONTEXT_LENGTH


class Unsupported(CallerFault):
    """This target's provider cannot express the request (a parameter it lacks, such as
    `n > 1` on Anthropic). Raised while building the request, so nothing was sent: the
    router tries the next candidate that can, and answers 400 only when none can."""

    code = "unsupported_parameter"

    def __init__(self, what: str, *, target: str = "", provider: str = "",
                 message: str | None = None) -> None:
        super().__init__(message or f"{what} is not supported by provider {provider}",
                         upstream_status=400, target=target)
        #: The request feature, as the caller wrote it (`n > 1`, `the 'tool' message role`).
        self.what = what
        self.provider = provider


class StreamBroken(UpstreamError):
    """A stream failed after content reached the client: no fallback is possible any more."""

    code = "stream_interrupted"
    kind = FailureKind.SERVER_ERROR


# Final outcome of a routed request.


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt (or skip) at one target, for the error body and the access log."""

    target: str
    outcome: str  # "ok", a FailureKind value, "callerFault", "cooldown", "missingCredential"
    status: int | None
    duration_ms: float
    sent: bool  # False when no request went out (cooldown, missing credential)
    message: str = ""


class AllAttemptsFailed(GatewayError):
    """Every target tried failed; `attempts` lists them in order."""

    code = "all_attempts_failed"

    def __init__(
        self,
        message: str,
        attempts: list[AttemptRecord],
        status: int,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.final_status = status
        self.retry_after = retry_after
