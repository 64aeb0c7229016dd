"""The gateway's app factory: routes, middleware, shared state and background work.

`create_app` wires the config store, the credentials, the adapter lookup and the config
sources into one `web.Application`. Resources live in `cleanup_ctx`: the one upstream
transport client (and the router built on it) and the sources' watch tasks, cancelled and
closed on shutdown. `serve.py` runs the app with handler cancellation on, so a client
that disconnects cancels its upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from switchyard_gateway.config.sources import Source
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.http import auth, mlflow_routes, openai_routes, ui
from switchyard_gateway.http.accounting import accounting_middleware
from switchyard_gateway.http.errors import error_middleware
from switchyard_gateway.http.state import STATE, GatewayState
from switchyard_gateway.http.tracing import tracing_middleware
from switchyard_gateway.metrics import AccessLogWriter, GatewayMetrics, access_log
from switchyard_gateway.routing.attempts import AdapterLookup, AttemptRunner
from switchyard_gateway.routing.cooldown import Cooldowns
from switchyard_gateway.routing.router import Router
from switchyard_gateway.secrets import Credentials
from switchyard_gateway.settings import GatewaySettings
from switchyard_gateway.transport import Client

Clock = Callable[[], float]
log = logging.getLogger(__name__)


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


def _log_source_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("config source stopped: %r", task.exception(), exc_info=task.exception())


def create_app(settings: GatewaySettings, store: ConfigStore, credentials: Credentials,
               adapters: AdapterLookup, sources: Sequence[Source] = (),
               cooldown_clock: Clock | None = None,
               metrics: GatewayMetrics | None = None) -> web.Application:
    """Build the gateway app (not yet running).

    Raises OSError when `settings.auth_tokens_file` is set but cannot be read.
    """
    # One concern each, outermost first: the trace and its headers, then counting and the
    # access line (which must see the final status, so it wraps the error rendering),
    # then the rendering of failures, then inbound auth (its refusals are rendered too).
    middlewares: list[Middleware] = [tracing_middleware, accounting_middleware,
                                     error_middleware]
    tokens: auth.TokenFile | None = None
    if settings.auth_tokens_file is not None:
        tokens = auth.TokenFile(settings.auth_tokens_file)
        tokens.load()
        middlewares.append(auth.middleware(tokens))
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    metrics = metrics or GatewayMetrics()
    store.subscribe(metrics.config_changed)
    state = GatewayState(settings=settings, store=store, metrics=metrics,
                         redactor=credentials.redactor)
    if settings.access_log == "stderr" and access_log.isEnabledFor(logging.INFO):
        state.access_writer = AccessLogWriter()
    app[STATE] = state
    rng = random.Random(settings.seed)
    cooldowns = Cooldowns(cooldown_clock) if cooldown_clock else Cooldowns()

    async def upstream(app: web.Application) -> AsyncIterator[None]:
        client = Client(limits=settings.upstream_limits(), observer=metrics.upstream_events,
                        keepalive_timeout=settings.upstream_keepalive_seconds,
                        limit_per_host=settings.upstream_max_connections_per_origin,
                        capacity_wait=settings.upstream_capacity_wait_seconds,
                        streams_per_origin=settings.upstream_max_streams_per_origin)
        runner = AttemptRunner(client, adapters, credentials, settings.sse_limits(),
                               metrics.upstream_events)
        state.router = Router(runner, cooldowns, rng, credentials.redactor)
        yield
        state.router = None
        await client.close()
        if state.access_writer is not None:
            state.access_writer.close()

    async def run_sources() -> None:
        for source in sources:
            if source.sync_in_background:
                await source.sync()
        store.mark_synced()
        await asyncio.gather(*(s.watch() for s in sources))

    async def watching(app: web.Application) -> AsyncIterator[None]:
        for source in sources:
            if not source.sync_in_background:
                await source.sync()
        if not any(s.sync_in_background for s in sources):
            store.mark_synced()  # ready as soon as the port opens
        task = asyncio.create_task(run_sources(), name="config-sources")
        task.add_done_callback(_log_source_failure)
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(upstream)
    app.cleanup_ctx.append(watching)
    if tokens is not None:
        app.cleanup_ctx.append(auth.watching(tokens, settings.poll_interval))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    openai_routes.add_routes(app)
    mlflow_routes.add_routes(app)
    ui.add_routes(app)
    return app
