"""The gateway's app factory: routes, middleware, shared state and background work.

`create_app` wires the config store, the credentials, the adapter lookup and the config
sources into one `web.Application`, and builds the admin app (`admin.py`: probes, metrics,
status page) over the same state, kept under `ADMIN`. With `--auth kubernetes` the
`kube_auth` middleware authenticates callers through the given `identity.Guard`.
Resources live in `cleanup_ctx`: the one upstream
transport client (and the router built on it) and the sources' watch tasks, cancelled and
closed on shutdown. `serve.py` runs the app with handler cancellation on, so a client
that disconnects cancels its upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from switchyard_gateway.config.sources import Source
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.credentials import Credentials
from switchyard_gateway.http import admin, auth, kube_auth, mlflow_routes, openai_routes
from switchyard_gateway.http.accounting import accounting_middleware
from switchyard_gateway.http.errors import error_middleware
from switchyard_gateway.http.state import STATE, GatewayState
from switchyard_gateway.http.tracing import traced_middleware, tracing_middleware
from switchyard_gateway.identity import Guard
from switchyard_gateway.metrics import AccessLogWriter, GatewayMetrics, access_log
from switchyard_gateway.pricing import PriceTable
from switchyard_gateway.routing.attempts import AdapterLookup, AttemptRunner
from switchyard_gateway.routing.cooldown import Cooldowns
from switchyard_gateway.routing.router import Router
from switchyard_gateway.settings import GatewaySettings
from switchyard_gateway.transport import Client

if TYPE_CHECKING:
    from switchyard_gateway.genai_metrics import GenAIMeters
    from switchyard_gateway.telemetry import Telemetry

Clock = Callable[[], float]
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
log = logging.getLogger(__name__)
#: The admin app (`admin.py`) built with the API app, for `serve.py` to listen on.
ADMIN = web.AppKey("switchyard_admin", web.Application)


def _log_source_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("config source stopped: %r", task.exception(), exc_info=task.exception())


def create_app(settings: GatewaySettings, store: ConfigStore, credentials: Credentials,
               adapters: AdapterLookup, sources: Sequence[Source] = (),
               cooldown_clock: Clock | None = None,
               cooldowns: Cooldowns | None = None,
               metrics: GatewayMetrics | None = None, guard: Guard | None = None,
               resources: Sequence[CleanupCtx] = (),
               telemetry: Telemetry | None = None,
               meters: GenAIMeters | None = None) -> web.Application:
    """Build the gateway app (not yet running), and its admin app under `ADMIN`.

    `guard` decides who may call what when `settings.auth_kubernetes` is set; `resources`
    are extra `cleanup_ctx` entries (the guard's API client); `telemetry` turns tracing
    on (`telemetry.from_env`; None: off, the plain tracing middleware); `meters` the OTLP
    GenAI metrics (`genai_metrics.from_env`; None: off). Raises OSError when
    `settings.auth_tokens_file` is set but cannot be read, PriceTableError when
    `settings.prices_file` cannot, ValueError when `settings.auth_kubernetes` is set
    without a guard.
    """
    prices = PriceTable.load(settings.prices_file) if settings.prices_file else None
    # One concern each, outermost first: the trace and its headers, then counting and the
    # access line (which must see the final status, so it wraps the error rendering),
    # then the rendering of failures, then inbound auth (its refusals are rendered too).
    middlewares: list[Middleware] = [
        tracing_middleware if telemetry is None else traced_middleware(telemetry),
        accounting_middleware, error_middleware]
    tokens: auth.TokenFile | None = None
    if settings.auth_tokens_file is not None:
        tokens = auth.TokenFile(settings.auth_tokens_file)
        tokens.load()
    if settings.auth_kubernetes:
        if guard is None:
            raise ValueError("--auth kubernetes needs the API server (a guard)")
        middlewares.append(kube_auth.middleware(guard, tokens))
    elif tokens is not None:
        middlewares.append(auth.middleware(tokens))
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    metrics = metrics or GatewayMetrics()
    metrics.prices = prices
    if telemetry is not None and telemetry.prices is None:
        telemetry.prices = prices
    store.subscribe(metrics.config_changed)
    state = GatewayState(settings=settings, store=store, metrics=metrics,
                         redactor=credentials.redactor,
                         guard=guard if settings.auth_kubernetes else None, meters=meters)
    if settings.access_log == "stderr" and access_log.isEnabledFor(logging.INFO):
        state.access_writer = AccessLogWriter()
    app[STATE] = state
    rng = random.Random(settings.seed)
    if cooldowns is None:
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
        if telemetry is not None:  # flush the queued spans (a blocking export, bounded)
            await asyncio.to_thread(telemetry.shutdown)
        if meters is not None:  # export the last metrics (blocking, bounded)
            await asyncio.to_thread(meters.shutdown)
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

    app.cleanup_ctx.extend(resources)
    app.cleanup_ctx.append(upstream)
    app.cleanup_ctx.append(watching)
    if tokens is not None:
        app.cleanup_ctx.append(auth.watching(tokens, settings.poll_interval))
    app.router.add_get("/healthz", admin.healthz)
    app.router.add_get("/readyz", admin.readyz)
    openai_routes.add_routes(app)
    mlflow_routes.add_routes(app)
    app[ADMIN] = admin.create_admin_app(state)
    return app
