"""Request ids and the `x-switchyard-*` headers: the tracing concern of every request.

`tracing_middleware` is the outermost middleware (`app.py`): it gives each request its
`RequestTrace` (under `TRACE`, with the caller's sane `x-request-id` or a fresh one) before
anything else runs, and stamps `x-request-id` and the routing headers on every response
not yet sent. With tracing on (`telemetry.py`) `traced_middleware` replaces it: the
same, plus the request's server span (not for the probes), ended once the request is
answered, with the served attempt's span and usage. Streams stamp the same headers
themselves (`sse.py`, through `routing_headers`) because their headers go out before the
handler returns. While the gateway drains before a shutdown, every answer closes its
connection (`Connection: close`): a client must not send its next request on a connection
the gateway is about to close, or that request gets no answer at all. It neither renders
errors (`errors.py`) nor counts or logs requests (`accounting.py`).
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from switchyard_gateway.http.state import STATE, TRACE
from switchyard_gateway.routing.router import RequestTrace

if TYPE_CHECKING:
    from switchyard_gateway.telemetry import Telemetry

#: The status an aborted request is traced with (as `accounting.CLIENT_CLOSED`).
_CLIENT_CLOSED = 499
#: The probes are not traced (a kubelet's every few seconds would bury the requests).
_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(request: web.Request) -> str:
    """The caller's `x-request-id` when it is sane, else a fresh one."""
    given = request.headers.get("x-request-id", "")
    if given and _REQUEST_ID.match(given):
        return given
    # A unique id, not a secret: the PRNG is ~10x cheaper than uuid4's os.urandom syscall.
    return f"{random.getrandbits(128):032x}"


def routing_headers(trace: RequestTrace) -> dict[str, str]:
    """`x-request-id` and, once an endpoint was resolved, the `x-switchyard-*` headers.

    `x-switchyard-target` names the last target tried or skipped; it is left out (never
    sent empty) when the request ended before any target was reached (a refused body,
    load shedding).
    """
    headers = {"x-request-id": trace.request_id}
    if trace.endpoint:
        headers["x-switchyard-endpoint"] = trace.endpoint
        if trace.target:
            headers["x-switchyard-target"] = trace.target
        headers["x-switchyard-attempts"] = str(trace.sent)
    return headers


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its trace; stamp the tracing headers on the response."""
    trace = RequestTrace(request_id=request_id_of(request))
    request[TRACE] = trace
    response = await handler(request)
    if not response.prepared:
        response.headers.update(routing_headers(trace))
    if request.app[STATE].draining:
        response.force_close()
    return response


def traced_middleware(telemetry: Telemetry) -> Middleware:
    """`tracing_middleware` plus the request's spans (tracing on)."""

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _UNTRACED:
            return await tracing_middleware(request, handler)
        trace = RequestTrace(request_id=request_id_of(request))
        resource = request.match_info.route.resource  # None: no route (a 404)
        route = resource.canonical if resource is not None else ""
        spans = telemetry.start(request.method, route, request.path, request.headers)
        trace.span = spans
        request[TRACE] = trace
        status = 500
        try:
            response = await handler(request)
            status = _CLIENT_CLOSED if trace.client_closed else response.status
        except asyncio.CancelledError:
            status = _CLIENT_CLOSED
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            spans.finish(status, trace)
        if not response.prepared:
            response.headers.update(routing_headers(trace))
        if request.app[STATE].draining:
            response.force_close()
        return response

    return traced
