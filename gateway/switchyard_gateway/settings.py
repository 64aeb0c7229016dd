"""Process-wide gateway settings, from the command line (`switchyard gateway`) or tests.

A frozen config object instead of a long constructor: the app factory, the runner and the
sources read what they need from it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from switchyard_gateway.providers import sse
from switchyard_gateway.transport import limits
from switchyard_schema.policy import PlatformPolicy


@dataclasses.dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What `switchyard gateway` flags set. Defaults are the documented ones."""

    host: str = "0.0.0.0"
    port: int = 8080
    #: The admin listener (probes, /metrics, /ui) on `host`; None: not served (tests).
    admin_port: int | None = 8081
    #: Bind with SO_REUSEPORT (set for each worker in `--workers N` mode).
    reuse_port: bool = False
    default_namespace: str = "default"
    # Platform policy and config integrity (docs/security.md).
    #: Allowed baseUrl hosts and env keys bound to hosts (`switchyard_schema.policy`).
    #: `env_keys=None` (no flag): every env var to any host standalone, none in a cluster.
    policy: PlatformPolicy = dataclasses.field(
        default_factory=lambda: PlatformPolicy(env_keys=None))
    #: Cluster mode: `NAMESPACE/NAME` (or `NAME`, in the gateway's namespace) of the Secret
    #: whose keys verify the operator's signatures, and how often it is read again.
    signing_secret: str = "switchyard-signing-key"
    signing_key_refresh: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_in_flight: int = 0  # 0: unlimited
    drain_seconds: float = 5.0
    #: A connection with no complete request this long after it opened (or after its last
    #: response) is closed: idle keep-alives and slowloris header dribbles alike. Above the
    #: usual load-balancer idle timeout (60 s), so the balancer closes first.
    keepalive_timeout: float = 75.0
    #: The whole request body must arrive within this many seconds (else 408).
    body_timeout: float = 60.0
    shutdown_timeout: float = 30.0
    config_path: str | None = None
    #: Cluster mode: namespaces to watch (empty: all) and an explicit kubeconfig (else
    #: in-cluster credentials; never an ambient KUBECONFIG).
    namespaces: tuple[str, ...] = ()
    kubeconfig: str | None = None
    poll_interval: float = 1.0
    #: Cluster mode: the replica's status report (`report.py`): its name ("": no report;
    #: the chart passes the Pod name), namespace ("": the connection's), the Pod's UID (the
    #: report's owner, so it goes with the Pod; "": no owner), the shortest and longest gap
    #: between two writes.
    report_name: str = ""
    report_namespace: str = ""
    report_owner_uid: str = ""
    report_interval: float = 1.0
    report_heartbeat: float = 5.0
    #: Cluster mode with a report: adopt the cooldowns other replicas report, so one
    #: replica probes a failing target per window (`peers.py`, `routing/sharing.py`).
    shared_cooldown: bool = True
    #: Inbound auth: a file of bearer tokens, one per line (None: no inbound auth).
    auth_tokens_file: str | None = None
    #: `--auth kubernetes`: callers present ServiceAccount tokens for `auth_audience`;
    #: RBAC (verb `use` on gatewayendpoints) decides which endpoints each may call.
    auth_kubernetes: bool = False
    auth_audience: str = "switchyard"
    #: Seed for the split's RNG (tests and benchmarks only); None: seeded by the OS.
    seed: int | None = None
    #: Where the JSON access line of each request goes: the `switchyard.access` logger
    #: ("logging", for custom handlers and tests), straight to stderr in batches ("stderr",
    #: the CLI default: ~10x cheaper per line), or nowhere ("off"). "stderr" writes only
    #: when the `switchyard.access` logger is enabled for INFO when the app is built.
    access_log: Literal["logging", "stderr", "off"] = "logging"
    #: `--prices-file`: the JSON price table (`pricing.py`) for the cost metric and spans.
    prices_file: str | None = None
    # -- upstream connections (docs/operations.md "Upstream connections") ------------
    #: Byte limits on what one upstream answer may make the gateway hold (`transport/
    #: limits.py` and `providers/sse.py` justify the defaults); crossing one fails the
    #: attempt as serverError.
    upstream_max_header_bytes: int = limits.HEADER_BYTES
    upstream_max_body_bytes: int = limits.BODY_BYTES
    upstream_max_decompressed_bytes: int = limits.DECOMPRESSED_BYTES
    upstream_max_sse_line_bytes: int = sse.LINE_BYTES
    upstream_max_sse_event_bytes: int = sse.EVENT_BYTES
    #: Idle upstream connections are reused for this long (below uvicorn's 5 s).
    upstream_keepalive_seconds: float = limits.KEEPALIVE_SECONDS
    #: Connections per upstream origin, and how long a request waits for one when all are
    #: busy before the attempt fails as overloaded (`transport/limits.py`).
    upstream_max_connections_per_origin: int = limits.CONNECTIONS_PER_ORIGIN
    upstream_capacity_wait_seconds: float = limits.CAPACITY_WAIT_SECONDS
    upstream_max_streams_per_origin: int = limits.STREAMS_PER_ORIGIN

    def upstream_limits(self) -> limits.Limits:
        """The transport's byte limits."""
        return limits.Limits(header_bytes=self.upstream_max_header_bytes,
                             body_bytes=self.upstream_max_body_bytes,
                             decompressed_bytes=self.upstream_max_decompressed_bytes)

    def sse_limits(self) -> sse.SseLimits:
        """The stream decoder's limits."""
        return sse.SseLimits(line_bytes=self.upstream_max_sse_line_bytes,
                             event_bytes=self.upstream_max_sse_event_bytes)
