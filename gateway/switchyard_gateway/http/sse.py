"""Writing a committed stream to the caller as Server-Sent Events.

Frames are written as they arrive (no buffering of the whole response; the frames already
decoded when one is written go out in the same write). If the upstream
breaks after the commit, the caller gets one `data: {"error": {...}}` event and the stream
ends without `data: [DONE]`, so clients can tell a cut answer from a complete one. A
client disconnect cancels the handler (handler cancellation is on) or fails a write;
either way the upstream response is closed in `finally` (its connection is not reused)
and the request is accounted as `client_closed` (`accounting.py`).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from switchyard_gateway import errors
from switchyard_gateway.http.tracing import routing_headers
from switchyard_gateway.metrics import GatewayMetrics
from switchyard_gateway.routing.router import CommittedStream, RequestTrace

SSE_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",  # tell nginx-style proxies not to buffer the stream
}


def error_frame(exc: errors.GatewayError) -> bytes:
    """An in-stream OpenAI-style error event."""
    body = {"error": {"message": exc.message, "type": exc.type, "code": exc.code}}
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def relay(request: web.Request, stream: CommittedStream, trace: RequestTrace,
                metrics: GatewayMetrics) -> web.StreamResponse:
    """Send the stream to the caller; always closes the upstream."""
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **routing_headers(trace)})
    gauge = metrics.streams_open(trace.endpoint)
    gauge.inc()
    try:
        await response.prepare(request)
        try:
            async for frames in stream.frames():
                await response.write(frames)
        except errors.StreamBroken as exc:
            await response.write(error_frame(exc))
        await response.write_eof()
    except ConnectionResetError:  # the caller went away mid-write; nothing left to tell it
        trace.client_closed = True
    finally:
        stream.close()
        gauge.dec()
        upstream = stream.upstream
        trace.usage = upstream.usage
        if trace.span is not None:
            trace.span.streamed(upstream.model, upstream.finish_reasons)
    return response
