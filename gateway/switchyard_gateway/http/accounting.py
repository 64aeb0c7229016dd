"""Counting and logging every request once: the metrics and access-log concern.

`accounting_middleware` sits inside `tracing_middleware` and outside the error rendering
(`app.py`), so it sees the final status of every answered request, error or not. A request
the client aborted (it hung up mid-request or mid-stream) is accounted too, with the
outcome `client_closed` and status 499 (nginx's "client closed request"): the handler is
cancelled (handler cancellation is on) or its stream write fails, the upstream attempt is
cancelled and its connection closed, and without this the request would leave no access
line and no metric, a gap in audit and billing. The probes and `/metrics` are not
accounted. With `--auth kubernetes` each request is also counted by caller namespace; with
OTLP metrics export on (`genai_metrics.py`) it is recorded as the GenAI metrics too.
Must not: render errors, or log anything but routing facts (never bodies or
key material; `metrics.access_line`).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from switchyard_gateway import metrics
from switchyard_gateway.http.state import STATE, TRACE
from switchyard_gateway.routing.router import RequestTrace

#: The status an aborted request is counted and logged with (nginx's convention).
CLIENT_CLOSED = 499
_UNACCOUNTED = frozenset({"/healthz", "/readyz", "/metrics"})


@web.middleware
async def accounting_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and log the request once it is answered, or once the client gave up."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        trace = request[TRACE]
        trace.client_closed = True
        account(request, trace, CLIENT_CLOSED, time.perf_counter() - started)
        raise
    except web.HTTPException as exc:  # a redirect: the error middleware renders the rest
        account(request, request[TRACE], exc.status, time.perf_counter() - started)
        raise
    trace = request[TRACE]
    account(request, trace, CLIENT_CLOSED if trace.client_closed else response.status,
            time.perf_counter() - started)
    return response


def account(request: web.Request, trace: RequestTrace, status: int, seconds: float) -> None:
    """The request's metrics and access line."""
    path = request.path
    if path in _UNACCOUNTED:
        return
    state = request.app[STATE]
    state.metrics.observe_request(trace, status, seconds)
    if trace.caller_namespace:  # --auth kubernetes: the basis for chargeback
        state.metrics.count_caller(trace, status)
    if state.meters is not None:  # OTLP metrics export on (genai_metrics.py)
        state.meters.record(trace, status, seconds, state.store.snapshot())
    if state.settings.access_log != "off":
        metrics.log_access(trace, method=request.method, path=path, status=status,
                           seconds=seconds, writer=state.access_writer)
