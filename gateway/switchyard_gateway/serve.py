"""Run the gateway process: build the app, listen, drain and stop on SIGTERM.

Called by `switchyard gateway`. Shutdown order (Kubernetes-friendly): on SIGTERM/SIGINT
`/readyz` fails at once while requests are still served for `drain_seconds` (so the
Service stops sending new traffic), then the listener closes and in-flight requests and
streams get up to `shutdown_timeout` to finish before they are cancelled. uvloop is used
when installed. `--workers N` forks N such processes on one port (`workers.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine

from aiohttp import web

from switchyard_gateway import genai_metrics, peers, report, telemetry
from switchyard_gateway import workers as worker_processes
from switchyard_gateway.config.cluster import REFUSAL_REASONS, ClusterHooks, ClusterSource
from switchyard_gateway.config.sources import FileSource, Source
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.config.trust import SigningKeySource, Trust
from switchyard_gateway.credentials import Credentials
from switchyard_gateway.http.app import ADMIN, CleanupCtx, create_app
from switchyard_gateway.http.server import GatewayRunner
from switchyard_gateway.http.state import STATE
from switchyard_gateway.identity import Guard, GuardSettings, KubeReviewer
from switchyard_gateway.metrics import GatewayMetrics
from switchyard_gateway.providers import registry
from switchyard_gateway.routing.cooldown import Cooldowns
from switchyard_gateway.settings import GatewaySettings
from switchyard_kube import client as kube
from switchyard_kube import login

log = logging.getLogger(__name__)


def kube_guard(settings: GatewaySettings, conn: kube.Connection) -> tuple[Guard, CleanupCtx]:
    """`--auth kubernetes`: a guard reviewing through its own API client, and the
    `cleanup_ctx` entry that opens and closes that client."""
    client = kube.Client(conn)
    guard = Guard(KubeReviewer(client, settings.auth_audience),
                  GuardSettings(audience=settings.auth_audience))

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with client:
            yield

    return guard, session


def build_app(settings: GatewaySettings) -> web.Application:
    """The app: standalone (a file source over `config_path`) or in-cluster (watches).

    In a cluster, ConfigMaps are served only when signed by the operator (the keys come
    from `signing_secret`) and within the platform policy (`config/trust.py`).
    Raises `ValueError` when cluster mode (or `--auth kubernetes`) finds no credentials.
    """
    store = ConfigStore(settings.default_namespace)
    policy = settings.policy
    needs_cluster = settings.auth_kubernetes or settings.config_path is None
    conn = login.load(settings.kubeconfig) if needs_cluster else None
    guard: Guard | None = None
    resources: list[CleanupCtx] = []
    if settings.auth_kubernetes and conn is not None:
        guard, session = kube_guard(settings, conn)
        resources.append(session)
    if settings.config_path is not None or conn is None:
        credentials = Credentials(os.environ, policy.env_names())
        source: Source = FileSource(settings.config_path or ".", store, credentials,
                                    settings.poll_interval, policy)
        return create_app(settings, store, credentials, registry.adapter_for, [source],
                          guard=guard, resources=resources, telemetry=telemetry.from_env(),
                          meters=genai_metrics.from_env())
    # In a cluster, env keys are platform keys: none unless --allowed-env-keys binds them.
    if policy.env_keys is None:
        policy = dataclasses.replace(policy, env_keys={})
    credentials = Credentials(os.environ, policy.env_names())
    client = kube.Client(conn)
    metrics = GatewayMetrics()
    hooks = ClusterHooks(
        propagation=metrics.propagation.observe,
        refused=lambda reason: metrics.refused_configmaps.labels(reason).inc(),
    )
    for reason in REFUSAL_REASONS:  # a series at 0 from the start: alerts see no gap
        metrics.refused_configmaps.labels(reason)
    trust = Trust(policy)
    cluster = ClusterSource(client, store, credentials, settings.namespaces, hooks, trust)
    key_namespace, _, key_name = settings.signing_secret.rpartition("/")
    keys = SigningKeySource(kube.Client(conn), trust, key_namespace or conn.default_namespace,
                            key_name, cluster.recheck, settings.signing_key_refresh)
    metrics.staleness.set_function(cluster.staleness)
    cooldowns = Cooldowns()
    if settings.report_name:
        resources.append(reporter_context(settings, conn, store, cooldowns, metrics))
        if settings.shared_cooldown:
            resources.append(peers_context(settings, conn, store, cooldowns, metrics))
    # The keys first: sources sync in order, so the first ConfigMaps are checked with them.
    return create_app(settings, store, credentials, registry.adapter_for, [keys, cluster],
                      cooldowns=cooldowns, metrics=metrics, guard=guard, resources=resources,
                      telemetry=telemetry.from_env(), meters=genai_metrics.from_env())


def reporter_context(settings: GatewaySettings, conn: kube.Connection, store: ConfigStore,
                     cooldowns: Cooldowns, metrics: GatewayMetrics) -> CleanupCtx:
    """The replica's status report (`report.py`), on its own API client."""
    owner = (report.Owner(settings.report_name, settings.report_owner_uid)
             if settings.report_owner_uid else None)
    where = report.ReportSettings(
        namespace=settings.report_namespace or conn.default_namespace,
        replica=settings.report_name, owner=owner, interval=settings.report_interval,
        heartbeat=settings.report_heartbeat)
    client = kube.Client(conn)
    for outcome in ("ok", "failed"):  # both series from the start: alerts see no gap
        metrics.report_writes.labels(outcome)
    reporter = report.Reporter(
        client, where, store.snapshot, cooldowns.cooling,
        on_write=lambda ok: metrics.report_writes.labels("ok" if ok else "failed").inc())
    return background(client, reporter.run, "status-report")


def peers_context(settings: GatewaySettings, conn: kube.Connection, store: ConfigStore,
                  cooldowns: Cooldowns, metrics: GatewayMetrics) -> CleanupCtx:
    """Shared cooldown (`peers.py`): the other replicas' reports, on its own API client."""
    client = kube.Client(conn)
    watcher = peers.Peers(
        client, settings.report_namespace or conn.default_namespace, settings.report_name,
        cooldowns, store.snapshot, settings.report_interval,
        on_adopt=metrics.cooldowns_adopted.inc)
    return background(client, watcher.run, "shared-cooldown")


def background(client: kube.Client, run: Callable[[], Coroutine[object, object, None]],
               name: str) -> CleanupCtx:
    """A `cleanup_ctx` entry running `run` as a task for the app's lifetime, on its
    own API client (closed after the task is cancelled)."""

    async def running(app: web.Application) -> AsyncIterator[None]:
        async with client:
            task = asyncio.create_task(run(), name=name)
            yield
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return running


async def serve(settings: GatewaySettings,
                on_listening: Callable[[int], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT, then drain and stop gracefully."""
    app = build_app(settings)
    # GatewayRunner: requests aiohttp cannot parse get the gateway's JSON error, and
    # neither the answer nor the log quotes their bytes (`http/server.py`).
    runner = GatewayRunner(app, handler_cancellation=True, access_log=None,
                           shutdown_timeout=settings.shutdown_timeout,
                           keepalive_timeout=settings.keepalive_timeout)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port,
                       shutdown_timeout=settings.shutdown_timeout,
                       reuse_port=settings.reuse_port or None)
    await site.start()
    port = _bound_port(runner, settings.port)
    log.info("gateway listening on %s:%d", settings.host, port)
    admin = None
    if settings.admin_port is not None:
        # Probes, /metrics and /ui (`http/admin.py`); the API app owns every resource.
        admin = web.AppRunner(app[ADMIN], handle_signals=False, access_log=None)
        await admin.setup()
        await web.TCPSite(admin, settings.host, settings.admin_port,
                          reuse_port=settings.reuse_port or None).start()
        log.info("admin (probes, metrics, status page) on %s:%d", settings.host,
                 _bound_port(admin, settings.admin_port))
    if on_listening is not None:
        on_listening(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        app[STATE].draining = True
        log.info("draining for %.1fs before closing the listener", settings.drain_seconds)
        await asyncio.sleep(settings.drain_seconds)
    finally:
        await runner.cleanup()
        if admin is not None:
            await admin.cleanup()
        log.info("gateway stopped")


def _bound_port(runner: web.AppRunner, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


def run(settings: GatewaySettings, workers: int = 1) -> int:
    """Blocking entry point, on uvloop when available; `workers` > 1 forks (`workers.py`).

    Returns the exit code.
    """
    if workers > 1:
        return worker_processes.run(settings, workers, _run_one)
    _run_one(settings)
    return 0


def _run_one(settings: GatewaySettings) -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows)
        asyncio.run(serve(settings))
        return
    uvloop.run(serve(settings))
