"""Compute a GatewayEndpoint's `status`: conditions in the Kubernetes convention + summary.

Called by `reconcile.py`. Pure: takes the previous status and the outcome of this
reconciliation, returns the new status. `lastTransitionTime` moves only when a condition's
`status` changes, so re-reconciling an unchanged endpoint (an operator restart) yields the
very same status and nothing is written.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

READY = "Ready"
ACCEPTED = "Accepted"
RESOLVED_REFS = "ResolvedRefs"
#: Set only when the operator reads gateway reports (`served.py`).
DEGRADED = "Degraded"
TYPES = (READY, ACCEPTED, RESOLVED_REFS, DEGRADED)

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """One condition as computed now (its transition time is worked out by `merge`)."""

    type: str
    status: str
    reason: str
    message: str


def now_rfc3339() -> str:
    """The current UTC time at second precision, as `metav1.Time` serialises it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(
    previous: Sequence[Mapping[str, Any]],
    current: Sequence[Condition],
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """The new `status.conditions`: `current`, keeping each unchanged status's transition time.

    Conditions of other types found in `previous` (written by someone else) are kept as-is.
    """
    by_type = {c.get("type"): c for c in previous if isinstance(c, Mapping)}
    out: list[dict[str, Any]] = []
    for cond in current:
        old = by_type.pop(cond.type, None)
        same = old is not None and old.get("status") == cond.status
        out.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": (
                    str(old.get("lastTransitionTime") or now) if old and same else now
                ),
                "observedGeneration": generation,
            }
        )
    out.extend(dict(c) for t, c in by_type.items() if t not in TYPES)
    return out


def find(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """The condition of a type in a conditions list, if present."""
    return next((c for c in conditions if c.get("type") == type_), None)


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    """The non-condition fields of the status (the printer columns read some of them)."""

    config_map_name: str | None
    spec_hash: str | None
    targets: str | None
    fallback_count: int | None
    #: From the gateway reports (`served.py`); None: not reading reports, keep previous.
    serving_replicas: int | None = None
    target_health: list[dict[str, Any]] | None = None


def build(
    previous: Mapping[str, Any],
    conditions: Sequence[Condition],
    summary: Summary,
    generation: int,
    now: str,
) -> dict[str, Any]:
    """The whole new status. Summary fields left None keep their previous values."""
    out: dict[str, Any] = {
        k: v
        for k, v in previous.items()
        if k in ("configMapName", "specHash", "targets", "fallbackCount",
                 "servingReplicas", "targetHealth")
    }
    fields: dict[str, Any] = {
        "configMapName": summary.config_map_name,
        "specHash": summary.spec_hash,
        "targets": summary.targets,
        "fallbackCount": summary.fallback_count,
        "servingReplicas": summary.serving_replicas,
        "targetHealth": summary.target_health,
    }
    out.update({k: v for k, v in fields.items() if v is not None})
    out["observedGeneration"] = generation
    out["conditions"] = merge(previous.get("conditions") or [], conditions, generation, now)
    return out


def changed(previous: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when writing `new` would change any field this module owns."""
    return any(previous.get(k) != v for k, v in new.items())


def transitions(
    previous: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Conditions of `new` whose status, reason or message differ from `previous`."""
    out = []
    for cond in new:
        old = find(previous, str(cond.get("type")))
        key = ("status", "reason", "message")
        if old is None or any(old.get(k) != cond.get(k) for k in key):
            out.append(cond)
    return out
