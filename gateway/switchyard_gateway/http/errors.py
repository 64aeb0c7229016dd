"""Turning failures into OpenAI-style error responses: the error concern of every request.

`GatewayError` -> `{"error": {"message", "type", "code", "param", ...}}` with its status
(and `attempts` plus `x-should-retry: false` for a final routing failure; that header on
401 and 403 too); aiohttp's own
HTTP errors (unknown path, wrong method, body too large) get the same shape; anything
else is a generic 500, logged (scrubbed of key material) with its traceback and never
shown to the caller. Every 429 carries `Retry-After`. `error_middleware` is the innermost
of the gateway's middlewares (`app.py`); request ids and headers are `tracing.py`'s job,
metrics and the access log `accounting.py`'s. `error_response` is also used for requests
aiohttp's parser refuses (`server.py`).
"""

from __future__ import annotations

import logging
import math
import traceback
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from switchyard_gateway import errors
from switchyard_gateway.http.state import STATE, TRACE

log = logging.getLogger(__name__)


def error_response(status: int, message: str, type_: str, code: str,
                   extra: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    """An OpenAI-style error body; a 429 always gets a Retry-After."""
    body = {"error": {"message": message, "type": type_, "code": code, "param": None,
                      **(extra or {})}}
    if status == 429 and not (headers and "retry-after" in headers):
        headers = {**(headers or {}), "retry-after": _seconds(errors.DEFAULT_RETRY_AFTER)}
    return web.Response(status=status, body=orjson.dumps(body),
                        content_type="application/json", headers=headers)


def _seconds(value: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(value)))


def render(exc: errors.GatewayError) -> web.Response:
    """The response for a gateway error."""
    headers: dict[str, str] = {}
    status, type_, code = exc.status, exc.type, exc.code
    extra: dict[str, Any] | None = None
    if isinstance(exc, errors.AllAttemptsFailed):
        status = exc.final_status
        type_ = "rate_limit_error" if status == 429 else "server_error"
        extra = {"attempts": [
            {"target": a.target, "outcome": a.outcome, "status": a.status,
             "duration_ms": a.duration_ms, "sent": a.sent, "message": a.message}
            for a in exc.attempts]}
        headers["x-should-retry"] = "false"
        if exc.retry_after is not None:
            headers["retry-after"] = _seconds(exc.retry_after)
    elif isinstance(exc, errors.CallerFault):
        # The provider's own type, code and param (scrubbed by the router), so a caller
        # sees `context_length_exceeded` or `content_policy_violation`, not a generic code.
        status = exc.upstream_status or 400
        type_ = exc.provider_type or exc.type
        code = exc.provider_code or exc.code
        extra = {"param": exc.provider_param}
    elif isinstance(exc, (errors.Overloaded, errors.AuthUnavailable)):
        headers["retry-after"] = _seconds(exc.retry_after)
    elif isinstance(exc, (errors.Unauthorized, errors.Forbidden)):
        headers["x-should-retry"] = "false"  # the same request can only fail again
    elif isinstance(exc, errors.UpstreamError):  # not expected outside the router
        status = 502 if exc.status in (401, 403) else exc.status
        if exc.retry_after is not None:
            headers["retry-after"] = _seconds(exc.retry_after)
    return error_response(status, exc.message, type_, code, extra, headers)


def from_http_exception(exc: web.HTTPException) -> web.Response:
    """The response for one of aiohttp's own HTTP errors (status 400 and up)."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return render(errors.BodyTooLarge("request body is over the gateway's size limit"))
    if exc.status == 404:
        return error_response(404, "no such route", "invalid_request_error", "not_found")
    code = "method_not_allowed" if exc.status == 405 else "http_error"
    type_ = "invalid_request_error" if exc.status < 500 else "server_error"
    allow = {"allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return error_response(exc.status, exc.reason, type_, code, headers=allow)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render any failure of the handler as an OpenAI-style error response."""
    try:
        return await handler(request)
    except errors.GatewayError as exc:
        return render(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_http_exception(exc)
    except Exception as exc:
        _log_unhandled(request, exc)
        return error_response(500, "internal gateway error", "server_error", "internal_error")


def _log_unhandled(request: web.Request, exc: Exception) -> None:
    """Log an unexpected error with its traceback, scrubbed: an exception raised while
    handling an upstream answer may quote it, and with it an echoed key."""
    redactor = request.app[STATE].redactor()
    text = "".join(traceback.format_exception(exc))
    log.error("unhandled error: %s", redactor.scrub(text, limit=None),
              extra={"request_id": request[TRACE].request_id})
