"""Whether the gateway replicas serve an endpoint's current spec, and how its targets do.

Called by `reconcile.py` with the replicas' status reports (`switchyard_schema.report`,
one ConfigMap per gateway replica). Pure: reports, the endpoint's key, spec hash and target
names, and the time in; the `Ready` and `Degraded` conditions, the serving count and the
per-target health out. A replica counts while its heartbeat is within `LIVE_INTERVALS`
of its own interval (15 s at the gateway's default 5 s heartbeat); one that is gone stops
counting then. Messages name replicas and targets, never more than `NAMED` of each.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from switchyard_operator.status import FALSE, TRUE, Condition
from switchyard_schema import report as shape

READY = "Ready"
DEGRADED = "Degraded"
#: Replicas or targets named in one message; the rest are counted.
NAMED = 5
NO_REPLICA = "NoGatewayReplica"
NOT_SERVED = "NotServedYet"
SERVED = "Served"
COOLING = "TargetsCoolingDown"
HEALTHY = "TargetsHealthy"


@dataclasses.dataclass(frozen=True, slots=True)
class Served:
    """What the reports say about one endpoint."""

    ready: Condition
    degraded: Condition
    serving: int  # live replicas serving the current spec
    live: int  # live replicas
    targets: list[dict[str, Any]]  # per-target health, in spec order


def _time(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:NAMED])
    return shown + (f" and {len(items) - NAMED} more" if len(items) > NAMED else "")


def assess(reports: Iterable[shape.Report], key: str, spec_hash: str,
           targets: Sequence[str], now: float) -> Served:
    """The served state of endpoint `key` (namespace/name) at `spec_hash`."""
    live = sorted((r for r in reports if r.live(now)), key=lambda r: r.replica)
    want = shape.short_hash(spec_hash)
    lagging = [r for r in live if r.endpoints.get(key) != want]
    serving = len(live) - len(lagging)
    if not live:
        ready = Condition(READY, FALSE, NO_REPLICA, "no gateway replica reports (none has "
                          "sent a heartbeat recently): nothing is known to serve this spec")
    elif lagging:
        detail = [f"{r.replica} ({'an older spec' if key in r.endpoints else 'not served'})"
                  for r in lagging]
        ready = Condition(READY, FALSE, NOT_SERVED, f"{len(lagging)} of {len(live)} gateway "
                          f"replicas do not serve the current spec yet: {_names(detail)}")
    else:
        ready = Condition(READY, TRUE, SERVED, f"served by {serving} gateway replica(s)")
    degraded, health = _health(live, key, targets)
    return Served(ready, degraded, serving=serving, live=len(live), targets=health)


def _health(live: Sequence[shape.Report], key: str,
            targets: Sequence[str]) -> tuple[Condition, list[dict[str, Any]]]:
    cooling: dict[str, list[tuple[str, shape.TargetCooling]]] = {}
    for r in live:
        for name, state in (r.cooling.get(key) or {}).items():
            cooling.setdefault(name, []).append((r.replica, state))
    health: list[dict[str, Any]] = []
    lines: list[str] = []
    for name in [*targets, *sorted(set(cooling) - set(targets))]:
        states = cooling.get(name)
        if not states:
            health.append({"name": name, "state": "Healthy"})
            continue
        since = min(s.since for _, s in states)
        reasons = sorted({s.reason for _, s in states})
        replicas = [replica for replica, _ in states]
        health.append({"name": name, "state": "CoolingDown", "reason": ",".join(reasons),
                       "since": _time(since), "replicas": len(replicas)})
        lines.append(f"{name} ({','.join(reasons)} since {_time(since)} on "
                     f"{_names(replicas)})")
    if lines:
        return Condition(DEGRADED, TRUE, COOLING,
                         f"targets cooling down: {_names(lines)}"), health
    return Condition(DEGRADED, FALSE, HEALTHY, "no target is cooling down"), health
