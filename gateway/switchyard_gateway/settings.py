"""Process-wide gateway settings, from the command line (`switchyard gateway`) or tests.

A frozen config object instead of a long constructor: the app factory, the runner and the
sources read what they need from it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal


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
    #: None allows every env var name (standalone default); a tuple is an allow-list.
    allow_env_keys: tuple[str, ...] | None = None
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
