"""The one middleware that turns failures into OpenAI-style error responses.

`GatewayError` -> `{"error": {"message", "type", "code", "param", ...}}` with its status
(and `attempts` plus `x-should-retry: false` for a final routing failure); aiohttp's own
HTTP errors (unknown path, wrong method, body too large) get the same shape; anything
else is a generic 500, logged with its traceback and never shown to the caller. The same
middleware stamps the request id and the `x-switchyard-*` headers and writes the access
log line and the request metrics, so every response (error or not) is accounted once.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from switchyard_gateway import errors, metrics
from switchyard_gateway.http.state import STATE, TRACE
from switchyard_gateway.routing.router import RequestTrace

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(request: web.Request) -> str:
    """The caller's `x-request-id` when it is sane, else a fresh one."""
    given = request.headers.get("x-request-id", "")
    if given and _REQUEST_ID.match(given):
        return given
    # A unique id, not a secret: the PRNG is ~10x cheaper than uuid4's os.urandom syscall.
    return f"{random.getrandbits(128):032x}"


def routing_headers(trace: RequestTrace) -> dict[str, str]:
    """`x-request-id` and, once an endpoint was resolved, the `x-switchyard-*` headers."""
    headers = {"x-request-id": trace.request_id}
    if trace.endpoint:
        headers["x-switchyard-endpoint"] = trace.endpoint
        headers["x-switchyard-target"] = trace.target
        headers["x-switchyard-attempts"] = str(trace.sent)
    return headers


def error_response(status: int, message: str, type_: str, code: str,
                   extra: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    """An OpenAI-style error body."""
    body = {"error": {"message": message, "type": type_, "code": code, "param": None,
                      **(extra or {})}}
    return web.Response(status=status, body=orjson.dumps(body),
                        content_type="application/json", headers=headers)


def _render(exc: errors.GatewayError) -> web.Response:
    headers: dict[str, str] = {}
    status, type_, extra = exc.status, exc.type, None
    if isinstance(exc, errors.AllAttemptsFailed):
        status = exc.final_status
        type_ = "rate_limit_error" if status == 429 else "server_error"
        extra = {"attempts": [
            {"target": a.target, "outcome": a.outcome, "status": a.status,
             "duration_ms": a.duration_ms, "sent": a.sent, "message": a.message}
            for a in exc.attempts]}
        headers["x-should-retry"] = "false"
        if exc.retry_after is not None:
            headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    elif isinstance(exc, errors.CallerFault):
        status = exc.upstream_status or 400
    elif isinstance(exc, errors.Overloaded):
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    elif isinstance(exc, errors.UpstreamError):  # not expected outside the router
        status = 502 if exc.status in (401, 403) else exc.status
    return error_response(status, exc.message, type_, exc.code, extra, headers)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return _render(errors.BodyTooLarge("request body is over the gateway's size limit"))
    if exc.status == 404:
        return error_response(404, "no such route", "invalid_request_error", "not_found")
    code = "method_not_allowed" if exc.status == 405 else "http_error"
    type_ = "invalid_request_error" if exc.status < 500 else "server_error"
    allow = {"allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return error_response(exc.status, exc.reason, type_, code, headers=allow)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render errors, stamp headers, count and log the request."""
    trace = RequestTrace(request_id=request_id_of(request))
    request[TRACE] = trace
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        response = await handler(request)
    except errors.GatewayError as exc:
        response = _render(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _from_http_exception(exc)
    except Exception:
        log.exception("unhandled error", extra={"request_id": trace.request_id})
        response = error_response(500, "internal gateway error", "server_error", "internal_error")
    if not response.prepared:
        response.headers.update(routing_headers(trace))
    _account(request, trace, response.status, time.perf_counter() - started)
    return response


def _account(request: web.Request, trace: RequestTrace, status: int, seconds: float) -> None:
    if request.path in ("/healthz", "/readyz", "/metrics"):
        return
    state = request.app[STATE]
    state.metrics.observe_request(trace, status, seconds)
    if state.settings.access_log != "off":
        metrics.log_access(trace, method=request.method, path=request.path, status=status,
                           seconds=seconds, writer=state.access_writer)
