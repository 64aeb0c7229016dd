"""`switchyard gateway`: run the gateway (standalone with --config, else in-cluster).

Every flag also reads `SWITCHYARD_<FLAG_NAME>` from the environment (for example
`SWITCHYARD_MAX_IN_FLIGHT=200`); a flag on the command line wins. Exit codes: 0 after a
clean shutdown, 2 for a usage error (bad flag value, missing config path, cluster mode
without any credentials).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from switchyard_gateway import serve
from switchyard_gateway.pricing import PriceTable, PriceTableError
from switchyard_gateway.providers import sse
from switchyard_gateway.settings import GatewaySettings
from switchyard_gateway.transport import limits
from switchyard_schema.policy import PlatformPolicy


def _env(name: str, default: Any) -> Any:
    return os.environ.get("SWITCHYARD_" + name.upper().replace("-", "_"), default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's flags (defaults from SWITCHYARD_* env vars)."""
    def flag(name: str, default: Any, help_text: str, type_: Any = str) -> None:
        parser.add_argument(f"--{name}", default=_env(name, default), type=type_, help=help_text)

    flag("config", None, "GatewayEndpoint manifests (file or folder): standalone mode")
    flag("host", "0.0.0.0", "address to listen on (default 0.0.0.0)")
    flag("port", 8080, "port to listen on (default 8080)", int)
    flag("admin-port", 8081, "port of the probes, /metrics and the /ui status page "
         "(default 8081; not the API port, so callers never see them)", int)
    flag("default-namespace", "default", "namespace of bare endpoint names (default 'default')")
    flag("namespaces", "", "cluster mode: comma-separated namespaces to watch (default all)")
    flag("kubeconfig", None, "cluster mode: kubeconfig instead of in-cluster credentials")
    # Platform policy and config integrity (docs/security.md).
    flag("allowed-base-url-hosts", "", "comma list of hosts a baseUrl may name: host, "
         "host:port, *.domain (default: any)")
    flag("allowed-env-keys", None, "comma list of NAME=host|host:port|*.domain: env vars "
         "apiKey.envVar may name and the hosts each value may be sent to (standalone "
         "default: every var, any host; cluster default: none)")
    flag("allow-env-keys", None, "deprecated spelling of --allowed-env-keys")
    flag("signing-secret", "switchyard-signing-key", "cluster mode: NAMESPACE/NAME (or NAME "
         "in the gateway's namespace) of the Secret whose keys verify the operator's "
         "ConfigMap signatures (default switchyard-signing-key)")
    flag("report-name", os.environ.get("POD_NAME", ""), "cluster mode: name of this "
         "replica's status report ConfigMap suffix (default $POD_NAME; empty: no report)")
    flag("report-namespace", os.environ.get("POD_NAMESPACE", ""), "cluster mode: namespace "
         "of the report (default $POD_NAMESPACE, else the connection's)")
    flag("report-owner-uid", os.environ.get("POD_UID", ""), "cluster mode: UID of the Pod "
         "named --report-name, the report's owner (default $POD_UID; empty: no owner)")
    flag("report-interval", 1.0, "shortest gap between two report writes (default 1 s)",
         float)
    flag("report-heartbeat", 5.0, "longest gap between two report writes; the operator "
         "stops counting a replica after 3 of them (default 5 s)", float)
    parser.add_argument(
        "--shared-cooldown", default=_env("shared-cooldown", "on"), choices=("on", "off"),
        help="cluster mode with a report: 'on' adopts the cooldowns other replicas report, "
        "so one replica probes a failing target per window; 'off': each replica finds out "
        "for itself (default on)")
    flag("max-body-bytes", 10 * 1024 * 1024, "request body limit (default 10 MiB)", int)
    flag("max-in-flight", 0, "gateway-wide in-flight request limit, 0 = unlimited", int)
    flag("drain-seconds", 5.0, "after SIGTERM, fail /readyz this long before closing", float)
    flag("shutdown-timeout", 30.0, "then wait this long for in-flight requests", float)
    flag("keepalive-timeout", 75.0, "close a connection without a complete request after "
         "this many seconds (idle keep-alive, slow headers; default 75)", float)
    flag("body-timeout", 60.0, "the request body must arrive within this many seconds, "
         "else 408 (default 60)", float)
    flag("auth-tokens-file", None, "require 'Authorization: Bearer <token>' on the API; "
         "tokens one per line, re-read on change (default: no inbound auth)")
    flag("auth", "", "'kubernetes': callers present a projected ServiceAccount token; "
         "TokenReview authenticates it and RBAC (verb 'use' on gatewayendpoints."
         "switchyard.dev) decides which endpoints it may call. Combines with "
         "--auth-tokens-file (default: off)")
    flag("auth-audience", "switchyard", "--auth kubernetes: the audience callers' tokens "
         "must carry (default 'switchyard')")
    flag("workers", 1, "worker processes sharing the port with SO_REUSEPORT (default 1); "
         "metrics are summed over workers (Prometheus multiprocess mode)", int)
    flag("log-level", "INFO", "DEBUG, INFO, WARNING or ERROR")
    flag("access-log", "stderr", "where each request's JSON access line goes: 'stderr' "
         "(default; the bare JSON line, written in batches within 50 ms), 'logging' (the "
         "switchyard.access Python logger, with the log format) or 'off'")
    flag("prices-file", None, "a JSON price table, US dollars per million tokens by "
         "upstream model ({\"gpt-4o\": {\"input\": 2.5, \"output\": 10}}): the "
         "switchyard_cost_usd metric and the attempt spans' cost (default: no cost)")
    _upstream_flags(flag)


def _upstream_flags(flag: Any) -> None:
    """Upstream connection limits (docs/operations.md "Upstream connections")."""
    flag("upstream-max-header-bytes", limits.HEADER_BYTES, "an upstream answer's header "
         "bytes, status line included (default 64 KiB)", int)
    flag("upstream-max-body-bytes", limits.BODY_BYTES, "a non-streaming upstream body, "
         "decoded (default 64 MiB)", int)
    flag("upstream-max-decompressed-bytes", limits.DECOMPRESSED_BYTES, "what one "
         "compressed upstream answer may inflate to (default 64 MiB)", int)
    flag("upstream-max-sse-line-bytes", sse.LINE_BYTES, "one line of an upstream event "
         "stream (default 4 MiB)", int)
    flag("upstream-max-sse-event-bytes", sse.EVENT_BYTES, "the data of one upstream "
         "stream event (default 8 MiB)", int)
    flag("upstream-keepalive-seconds", limits.KEEPALIVE_SECONDS, "reuse an idle upstream "
         "connection for this long (default 4, below uvicorn's 5)", float)
    flag("upstream-max-connections-per-origin", limits.CONNECTIONS_PER_ORIGIN, "connections "
         "to one upstream origin (scheme://host:port), shared by every endpoint that uses "
         "it (default 1000)", int)
    flag("upstream-capacity-wait-seconds", limits.CAPACITY_WAIT_SECONDS, "how long a "
         "request waits for a connection when its origin is at the limit; then the attempt "
         "fails as overloaded and the fallback serves (default 0.25)", float)
    flag("upstream-max-streams-per-origin", limits.STREAMS_PER_ORIGIN, "concurrent HTTP/2 "
         "streams to one upstream origin, over all its connections (default 10000)", int)


def _upstream_problem(args: argparse.Namespace) -> str | None:
    """Why the upstream flags are unusable, or None."""
    for name in ("header", "body", "decompressed", "sse_line", "sse_event"):
        if int(getattr(args, f"upstream_max_{name}_bytes")) < 1:
            return f"--upstream-max-{name.replace('_', '-')}-bytes must be at least 1"
    if float(args.upstream_keepalive_seconds) <= 0:
        return "--upstream-keepalive-seconds must be above 0"
    if int(args.upstream_max_connections_per_origin) < 1:
        return "--upstream-max-connections-per-origin must be at least 1"
    if int(args.upstream_max_streams_per_origin) < 1:
        return "--upstream-max-streams-per-origin must be at least 1"
    if float(args.upstream_capacity_wait_seconds) < 0:
        return "--upstream-capacity-wait-seconds must be 0 or more"
    return None


def _policy(args: argparse.Namespace) -> PlatformPolicy:
    """The platform policy flags; raises `PolicySyntaxError` (a `ValueError`)."""
    env_keys = args.allowed_env_keys
    if args.allow_env_keys is not None:
        logging.getLogger(__name__).warning(
            "--allow-env-keys is deprecated: use --allowed-env-keys (the operator's name)")
        if env_keys is None:
            env_keys = args.allow_env_keys
    return PlatformPolicy.parse(args.allowed_base_url_hosts, env_keys)


def settings_from(args: argparse.Namespace) -> GatewaySettings:
    """Turn parsed flags into settings. Raises `ValueError` on a malformed allow-list."""
    return GatewaySettings(
        host=args.host, port=int(args.port), default_namespace=args.default_namespace,
        policy=_policy(args), signing_secret=args.signing_secret,
        max_body_bytes=int(args.max_body_bytes),
        max_in_flight=int(args.max_in_flight), drain_seconds=float(args.drain_seconds),
        shutdown_timeout=float(args.shutdown_timeout), config_path=args.config,
        namespaces=tuple(n.strip() for n in str(args.namespaces).split(",") if n.strip()),
        kubeconfig=args.kubeconfig, auth_tokens_file=args.auth_tokens_file,
        keepalive_timeout=float(args.keepalive_timeout), body_timeout=float(args.body_timeout),
        access_log=args.access_log, admin_port=int(args.admin_port),
        prices_file=args.prices_file,
        auth_kubernetes=args.auth == "kubernetes", auth_audience=args.auth_audience,
        upstream_max_header_bytes=int(args.upstream_max_header_bytes),
        upstream_max_body_bytes=int(args.upstream_max_body_bytes),
        upstream_max_decompressed_bytes=int(args.upstream_max_decompressed_bytes),
        upstream_max_sse_line_bytes=int(args.upstream_max_sse_line_bytes),
        upstream_max_sse_event_bytes=int(args.upstream_max_sse_event_bytes),
        upstream_keepalive_seconds=float(args.upstream_keepalive_seconds),
        upstream_max_connections_per_origin=int(args.upstream_max_connections_per_origin),
        upstream_capacity_wait_seconds=float(args.upstream_capacity_wait_seconds),
        upstream_max_streams_per_origin=int(args.upstream_max_streams_per_origin),
        report_name=args.report_name, report_namespace=args.report_namespace,
        report_owner_uid=args.report_owner_uid,
        report_interval=float(args.report_interval),
        report_heartbeat=float(args.report_heartbeat),
        shared_cooldown=args.shared_cooldown == "on",
    )


def run(args: argparse.Namespace) -> int:
    """Start the gateway; returns when it has stopped."""
    logging.basicConfig(level=str(args.log_level).upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.config is not None and not os.path.exists(args.config):
        print(f"switchyard gateway: --config {args.config}: no such file or folder",
              file=sys.stderr)
        return 2
    if args.auth_tokens_file is not None and not os.path.isfile(args.auth_tokens_file):
        print(f"switchyard gateway: --auth-tokens-file {args.auth_tokens_file}: no such file",
              file=sys.stderr)
        return 2
    if args.auth not in ("", "kubernetes"):
        print(f"switchyard gateway: --auth {args.auth}: expected kubernetes", file=sys.stderr)
        return 2
    if args.access_log not in ("stderr", "logging", "off"):
        print(f"switchyard gateway: --access-log {args.access_log}: expected stderr, logging "
              "or off", file=sys.stderr)
        return 2
    if (problem := _upstream_problem(args)) is not None:
        print(f"switchyard gateway: {problem}", file=sys.stderr)
        return 2
    if int(args.workers) < 1:
        print("switchyard gateway: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"switchyard gateway: {exc}", file=sys.stderr)
        return 2
    if settings.prices_file is not None:  # checked here for a clear message (and re-read)
        try:
            PriceTable.load(settings.prices_file)
        except PriceTableError as exc:
            print(f"switchyard gateway: --prices-file: {exc}", file=sys.stderr)
            return 2
    try:
        return serve.run(settings, int(args.workers))
    except ValueError as exc:
        print(f"switchyard gateway: cluster mode or --auth kubernetes: {exc}",
              file=sys.stderr)
        return 2
