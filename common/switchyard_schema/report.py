"""The gateway-to-operator status report: what one gateway replica serves, and how its targets do.

Written by the gateway (`switchyard_gateway/report.py`, one ConfigMap per replica in its
own namespace, owned by its Pod so it goes with the Pod), read by the operator
(`switchyard_operator/served.py`) to set `Ready`, `Degraded` and per-target health on each
GatewayEndpoint. Defined once here so the two parts cannot drift apart. Pure: no I/O, no
Kubernetes client.

What a report holds (never key material: target names, hashes, times and reasons only):
the replica's name, a heartbeat (wall-clock seconds) and the interval it promises to beat
at, the spec hash it applied per endpoint (the first `HASH_CHARS` hex digits, grouped by
namespace, so an endpoint costs its name plus 22 bytes: 10,000 endpoints with 40-character
names take 606 KiB of a ConfigMap's 1 MiB, 879 KiB with the namespace on every line), and
per endpoint the targets whose cooldown is open, since when and why. `decode` also reads the
flat `namespace/name` shape of earlier replicas.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

#: Label on every report ConfigMap (and the selector the operator watches them with). Not
#: the operator's managed-by label: the gateway's config watch must never see a report.
REPORT_LABEL = "switchyard.dev/gateway-report"
REPORT_VALUE = "true"
REPORT_SELECTOR = f"{REPORT_LABEL}={REPORT_VALUE}"
REPORT_PREFIX = "switchyard-gateway-report-"
DATA_KEY = "report.json"
#: Hex digits of the spec hash kept per endpoint (64 bits: a collision is not a concern).
HASH_CHARS = 16
#: A replica whose heartbeat is older than this many of its own intervals is gone.
LIVE_INTERVALS = 3.0
REASONS = ("failing", "rateLimited")


class InvalidReport(ValueError):
    """A report ConfigMap whose payload does not parse as a report."""


@dataclasses.dataclass(frozen=True, slots=True)
class TargetCooling:
    """One target whose cooldown is open on the reporting replica."""

    since: float  # wall-clock seconds when it opened
    until: float  # wall-clock seconds when the next probe may go
    reason: str  # one of REASONS


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    """One replica's report."""

    replica: str
    heartbeat: float  # wall-clock seconds
    interval: float  # seconds between heartbeats it promises
    endpoints: Mapping[str, str]  # "namespace/name" -> short spec hash
    cooling: Mapping[str, Mapping[str, TargetCooling]]  # endpoint -> target name -> state

    def live(self, now: float) -> bool:
        """Has the replica beaten recently enough to count?"""
        return now - self.heartbeat <= LIVE_INTERVALS * self.interval


def report_name(replica: str) -> str:
    """The ConfigMap name of a replica's report."""
    return REPORT_PREFIX + replica


def short_hash(spec_hash: str) -> str:
    """The part of a `sha256:<hex>` spec hash a report carries."""
    return spec_hash.removeprefix("sha256:")[:HASH_CHARS]


def encode(report: Report) -> str:
    """The `report.json` text (compact, sorted: equal reports give equal text)."""
    body: dict[str, Any] = {
        "replica": report.replica,
        "heartbeat": round(report.heartbeat, 3),
        "interval": report.interval,
        "endpoints": _by_namespace(report.endpoints),
        "cooling": {
            key: {name: [round(t.since, 3), round(t.until, 3), t.reason]
                  for name, t in targets.items()}
            for key, targets in report.cooling.items() if targets
        },
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def decode(text: str) -> Report:
    """Parse `report.json`; raises `InvalidReport` on any deviation from `encode`'s shape."""
    try:
        body = json.loads(text)
        endpoints = body["endpoints"]
        cooling = body["cooling"]
        if not (isinstance(endpoints, dict) and isinstance(cooling, dict)):
            raise TypeError("endpoints and cooling must be objects")
        return Report(
            replica=str(body["replica"]),
            heartbeat=float(body["heartbeat"]),
            interval=float(body["interval"]),
            endpoints=_flat(endpoints),
            cooling={
                str(key): {str(name): TargetCooling(float(s), float(u), _reason(r))
                           for name, (s, u, r) in targets.items()}
                for key, targets in cooling.items()
            },
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidReport(f"{DATA_KEY}: {type(exc).__name__}") from None


def _by_namespace(endpoints: Mapping[str, str]) -> dict[str, dict[str, str]]:
    # Each namespace once, not once per endpoint: at 10,000 endpoints the namespaces alone
    # would be a third of the report (a ConfigMap holds 1 MiB).
    out: dict[str, dict[str, str]] = {}
    for key, short in endpoints.items():
        namespace, _, name = key.partition("/")
        out.setdefault(namespace, {})[name] = short
    return out


def _flat(endpoints: Mapping[str, Any]) -> dict[str, str]:
    """`namespace/name` -> hash from the grouped shape (or the flat one it replaced)."""
    out: dict[str, str] = {}
    for key, value in endpoints.items():
        if isinstance(value, dict):
            out.update({f"{key}/{name}": str(short) for name, short in value.items()})
        else:
            out[str(key)] = str(value)
    return out


def _reason(value: object) -> str:
    if value not in REASONS:
        raise ValueError("unknown reason")
    return str(value)
