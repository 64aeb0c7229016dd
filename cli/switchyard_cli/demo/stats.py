"""What the demo shows, worked out from the client's samples: shares, rates, latency.

Pure functions over `traffic.Sample`s and the endpoint's targets (`overlay.TargetInfo`),
so the numbers printed by the demo, and checked by its test, are unit-testable.
A fallback taken is a successful request served by a target from the `fallbacks` list.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence

from switchyard_cli.demo.overlay import TargetInfo
from switchyard_cli.demo.traffic import Sample


@dataclasses.dataclass(frozen=True, slots=True)
class TargetRow:
    """One target's line in the table."""

    info: TargetInfo
    weight: int | None  # the weight configured right now (split targets)
    served: int
    share: float  # of the successful requests in the window


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """A window of traffic."""

    rows: tuple[TargetRow, ...]
    requests: int
    errors: int
    fallbacks: int
    per_second: float
    p50_ms: float | None
    p99_ms: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-quantile (0 < q <= 1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def compute(samples: Sequence[Sample], targets: Sequence[TargetInfo],
            weights: Mapping[str, int], seconds: float) -> Stats:
    """Stats of `samples` (a window `seconds` long) for the endpoint's `targets`."""
    ok = [s for s in samples if 200 <= s.status < 300]
    served = Counter(s.target for s in ok)
    total = len(ok)
    rows = tuple(
        TargetRow(info=t, weight=weights.get(t.name) if t.role == "split" else None,
                  served=served[t.name], share=served[t.name] / total if total else 0.0)
        for t in targets)
    fallback_names = {t.name for t in targets if t.role == "fallback"}
    latencies = [s.seconds * 1000.0 for s in samples]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return Stats(
        rows=rows,
        requests=len(samples),
        errors=len(samples) - total,
        fallbacks=sum(served[n] for n in fallback_names),
        per_second=len(samples) / seconds if seconds > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
    )
