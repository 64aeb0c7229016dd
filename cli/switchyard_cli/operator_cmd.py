"""`switchyard operator`: run the Kopf operator in this process.

Flags (each also read from `SWITCHYARD_OPERATOR_<FLAG>`, e.g.
`SWITCHYARD_OPERATOR_ALLOWED_BASE_URL_HOSTS`): the namespaces to watch, the kubeconfig,
the platform's allow-lists (`switchyard_schema.policy` syntax, shared with the gateway), the
signing-key Secret, the liveness port and leader election. Exit 2 on a malformed
allow-list or an unreadable signing key. Kopf runs through
`kopf.operator(...)` with `switchyard_operator.handlers` registered; no `kopf run` subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any

_ENV = "SWITCHYARD_OPERATOR_"
DEFAULT_SIGNING_SECRET = "switchyard-signing-key"


def _env(flag: str, default: str = "") -> str:
    return os.environ.get(_ENV + flag.upper().replace("-", "_"), default)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def secret_ref(text: str, default_namespace: str) -> tuple[str, str]:
    """`NAMESPACE/NAME` or `NAME` -> (namespace, name)."""
    namespace, _, name = text.rpartition("/")
    return namespace or default_namespace, name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the subcommand's flags."""
    parser.add_argument(
        "--namespaces",
        default=_env("namespaces"),
        help="comma list of namespaces to watch (default: all)",
    )
    parser.add_argument(
        "--kubeconfig",
        default=_env("kubeconfig") or None,
        help="kubeconfig file (default: in-cluster, else ~/.kube/config)",
    )
    parser.add_argument(
        "--context",
        default=_env("context") or None,
        help="kubeconfig context (default: its current-context)",
    )
    parser.add_argument(
        "--allowed-base-url-hosts",
        default=_env("allowed-base-url-hosts"),
        help="comma list of hosts a baseUrl may name: host, host:port, *.domain; empty = any",
    )
    parser.add_argument(
        "--allowed-env-keys",
        default=_env("allowed-env-keys"),
        help="comma list of NAME=host|host:port|*.domain: the env vars apiKey.envVar may name"
        " and the hosts each value may be sent to; empty = none",
    )
    parser.add_argument(
        "--signing-secret",
        default=_env("signing-secret", DEFAULT_SIGNING_SECRET),
        help="NAMESPACE/NAME (or NAME, in the operator's namespace) of the Secret whose"
        f" 'current' key signs every rendered ConfigMap (default {DEFAULT_SIGNING_SECRET})",
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=int(_env("liveness-port", "8081")),
        help="serve http://HOST:PORT/healthz (0 = off; default 8081)",
    )
    parser.add_argument(
        "--liveness-host",
        default=_env("liveness-host", "0.0.0.0"),
        help="address the liveness endpoint binds (default 0.0.0.0, for the kubelet's probe)",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        default=_env("standalone").lower() in ("1", "true", "yes"),
        help="no leader election (a single replica, development, tests)",
    )
    parser.add_argument(
        "--lease-name",
        default=_env("lease-name", "switchyard-operator"),
        help="Lease used for leader election (default switchyard-operator)",
    )
    parser.add_argument(
        "--lease-namespace",
        default=_env("lease-namespace") or None,
        help="namespace of the Lease (default: the pod's or kubeconfig's)",
    )
    parser.add_argument(
        "--lease-duration",
        type=int,
        default=int(_env("lease-duration", "15")),
        help="seconds a leader holds the Lease without renewing (default 15)",
    )
    parser.add_argument(
        "--identity",
        default=_env("identity") or None,
        help="leader election identity (default: hostname-pid)",
    )
    parser.add_argument(
        "--gateway-reports-namespace",
        default=_env("gateway-reports-namespace") or None,
        help="namespace of the gateway replicas' status reports: Ready then means every"
        " live replica serves the current spec, and Degraded shows cooling targets (the"
        " chart sets it). Unset: Ready means rendered (transitional; docs/operator.md)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def _pod_owner(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """An ownerReference to the operator's own Pod (the chart passes POD_NAME and POD_UID
    from the downward API), so the Lease goes with the last operator pod; None outside."""
    name, uid = environ.get("POD_NAME"), environ.get("POD_UID")
    if not name or not uid:
        return None
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}


def _connection(args: argparse.Namespace) -> object:
    from switchyard_kube import login

    return login.load(args.kubeconfig, args.context)


@contextlib.asynccontextmanager
async def _standby_liveness(host: str, port: int) -> AsyncIterator[None]:
    """Answer /healthz while waiting for the Lease, so a standby pod is not restarted."""
    from aiohttp import web

    if not port:
        yield
        return

    async def healthz(_: web.Request) -> web.StreamResponse:
        return web.json_response({"standby": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()


async def _serve(args: argparse.Namespace) -> int:
    import kopf

    from switchyard_kube import client as kubeclient
    from switchyard_operator import apply, handlers, lease, reconcile, reports, served_status
    from switchyard_schema.policy import PlatformPolicy

    policy = PlatformPolicy.parse(args.allowed_base_url_hosts, args.allowed_env_keys)
    conn = _connection(args)
    assert isinstance(conn, kubeclient.Connection)
    key_namespace, key_name = secret_ref(args.signing_secret, conn.default_namespace)
    namespaces = _split(args.namespaces)
    host = f"[{args.liveness_host}]" if ":" in args.liveness_host else args.liveness_host
    liveness = f"http://{host}:{args.liveness_port}/healthz" if args.liveness_port else None
    async with kubeclient.Client(conn) as client:
        keys = await apply.signing_keys(client, key_namespace, key_name)
        runtime = reconcile.Runtime(client=client, policy=policy, keys=keys)
        stop = asyncio.Event()
        elector = None
        if not args.standalone:
            elector = lease.Elector(
                client,
                args.lease_namespace or conn.default_namespace,
                args.lease_name,
                args.identity or f"{socket.gethostname()}-{os.getpid()}",
                duration=args.lease_duration,
                owner=_pod_owner(os.environ),
            )
            async with _standby_liveness(args.liveness_host, args.liveness_port):
                await elector.acquire()
        keeper = asyncio.create_task(elector.keep(stop)) if elector else None
        background: list[asyncio.Task[None]] = []  # the leader's only: they write status
        try:
            if args.gateway_reports_namespace:
                runtime.reports = reports.Reports(client, args.gateway_reports_namespace)
                background.append(asyncio.create_task(runtime.reports.reflector.run()))
                # Seen before the first reconciliations, so a restart does not flap Ready.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(runtime.reports.reflector.synced.wait(), 10)
                background.append(asyncio.create_task(served_status.keep_served(runtime)))
            assert handlers.ENDPOINTS  # the import registered the handlers
            await kopf.operator(
                standalone=True,
                clusterwide=not namespaces,
                namespaces=namespaces,
                liveness_endpoint=liveness,
                memo=kopf.Memo(runtime=runtime),
                stop_flag=stop,
            )
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            if elector is not None and not (
                keeper and keeper.done() and stop.is_set() and not keeper.cancelled()
            ):
                await elector.release()
    lost = keeper is not None and stop.is_set() and not keeper.cancelled()
    return 1 if lost else 0


def run(args: argparse.Namespace) -> int:
    """Run the operator until SIGINT/SIGTERM (exit 0) or a lost Lease (exit 1)."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from switchyard_operator.apply import SigningKeyUnavailable

    try:
        return asyncio.run(_serve(args))
    except ValueError as exc:  # unreadable kubeconfig, no cluster, malformed allow-list
        print(f"switchyard operator: {exc}", file=sys.stderr)
        return 2
    except SigningKeyUnavailable as exc:
        print(
            f"switchyard operator: --signing-secret: {exc} (the chart creates it;"
            " docs/security.md shows how to create one by hand)",
            file=sys.stderr,
        )
        return 2
