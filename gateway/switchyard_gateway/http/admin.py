"""The admin port (`--admin-port`, default 8081): probes, `/metrics` and the status page.

Built by `app.create_app` next to the API app, over the same `GatewayState`, and served by
`serve.py` on its own listener. The chart's Service exposes only the API port; the kubelet's
probes and Prometheus (ServiceMonitor) reach this one, and the NetworkPolicy admits only
them. So callers of the API never see other tenants' endpoints, providers and models
(`/ui/status.json`) or the metrics, and the admin routes need no token. The probes are
also answered on the API port (load balancers probe the port they send traffic to).
Must not: serve any API route, or hold resources of its own (the API app's cleanup_ctx
owns them; this app starts and stops with it).
"""

from __future__ import annotations

from aiohttp import web

from switchyard_gateway.http import ui
from switchyard_gateway.http.errors import error_middleware
from switchyard_gateway.http.state import STATE, GatewayState
from switchyard_gateway.http.tracing import tracing_middleware

#: The paths the admin port serves.
PATHS = ("/healthz", "/readyz", "/metrics", "/ui", "/ui/status.json")


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 after the first full config sync, 503 before it or while draining."""
    state = request.app[STATE]
    if state.draining:
        return web.json_response({"status": "draining"}, status=503)
    if not state.store.synced:
        return web.json_response({"status": "syncing"}, status=503)
    return web.json_response({"status": "ready", "endpoints": len(state.store.snapshot())})


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={"content-type": "text/plain; version=0.0.4"})


def create_admin_app(state: GatewayState) -> web.Application:
    """The admin app over `state` (call before the API app starts: `ui` subscribes)."""
    app = web.Application(middlewares=[tracing_middleware, error_middleware])
    app[STATE] = state
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    ui.add_routes(app)
    return app
