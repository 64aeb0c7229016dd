"""Request ids and the `x-switchyard-*` headers: the tracing concern of every request.

`tracing_middleware` is the outermost middleware (`app.py`): it gives each request its
`RequestTrace` (under `TRACE`, with the caller's sane `x-request-id` or a fresh one) before
anything else runs, and stamps `x-request-id` and the routing headers on every response
not yet sent. Streams stamp the same headers themselves (`sse.py`, through
`routing_headers`) because their headers go out before the handler returns. While the
gateway drains before a shutdown, every answer closes its connection (`Connection:
close`): a client must not send its next request on a connection the gateway is about to
close, or that request gets no answer at all. It neither renders errors (`errors.py`) nor
counts or logs requests (`accounting.py`).
"""

from __future__ import annotations

import random
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from switchyard_gateway.http.state import STATE, TRACE
from switchyard_gateway.routing.router import RequestTrace

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
