"""The gateway's status page: `GET /ui` (one self-contained HTML file) and `GET /ui/status.json`.

The page polls the JSON, which lists every endpoint this gateway serves: its targets in
routing order, configured weights against the shares actually served, fallbacks taken,
requests per second, p50/p99 latency, and the config version (spec hash, generation) with
its age. `switchyard status` prints the same JSON as a table.

Observed numbers come from the Prometheus counters the gateway already keeps
(`metrics.GatewayMetrics.render`, which also sums workers in `--workers` mode), so the
request path pays nothing for the page. Shares and rates are deltas over a recent window:
each JSON request keeps a snapshot of the counters (at most one a second, a bounded
number), and the answer compares now with the newest snapshot at least `WINDOW_SECONDS`
old. The page shows names, models and hashes only, never key material or key references.
"""

from __future__ import annotations

import bisect
import dataclasses
import importlib.resources
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from switchyard_gateway.config.compiled import CompiledEndpoint, CompiledTarget
from switchyard_gateway.config.store import ChangeKind, ConfigChange
from switchyard_gateway.http.state import STATE, GatewayState

#: Shares and rates cover roughly this many recent seconds (since start, early on).
WINDOW_SECONDS = 30.0
_MIN_SPACING = 1.0  # seconds between two kept snapshots
_MAX_SNAPSHOTS = 600

Clock = Callable[[], float]
#: ("requests", endpoint, target, status) | ("fallbacks", endpoint, target, outcome)
#: | ("latency_bucket", endpoint, le) | ("latency_count", endpoint)
#: | ("tokens", endpoint, target, kind) | ("cost", endpoint, target) -> value
Counts = Mapping[tuple[str, ...], float]


def read_counts(exposition: str) -> dict[tuple[str, ...], float]:
    """The counters the page needs, from the Prometheus text format."""
    counts: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            lab = s.labels
            if s.name == "switchyard_requests_total":
                key: tuple[str, ...] = ("requests", lab["endpoint"], lab["target"], lab["status"])
            elif s.name == "switchyard_fallbacks_total":
                key = ("fallbacks", lab["endpoint"], lab["target"], lab["outcome"])
            elif s.name == "switchyard_request_duration_seconds_bucket":
                key = ("latency_bucket", lab["endpoint"], lab["le"])
            elif s.name == "switchyard_request_duration_seconds_count":
                key = ("latency_count", lab["endpoint"])
            elif s.name == "switchyard_tokens_total":
                key = ("tokens", lab["endpoint"], lab["target"], lab["kind"])
            elif s.name == "switchyard_cost_usd_total":  # summed over the target's models
                key = ("cost", lab["endpoint"], lab["target"])
            else:
                continue
            counts[key] = counts.get(key, 0.0) + s.value
    return counts


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram (`le` -> count), as Prometheus'
    `histogram_quantile` works it out (linear inside a bucket); None without samples."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    cumulative = [buckets[b] for b in bounds]
    rank = q * cumulative[-1]
    i = bisect.bisect_left(cumulative, rank)
    if i >= len(bounds) - 1 and math.isinf(bounds[-1]):
        return bounds[-2] if len(bounds) > 1 else None  # in the +Inf bucket
    lower = bounds[i - 1] if i > 0 else 0.0
    below = cumulative[i - 1] if i > 0 else 0.0
    inside = cumulative[i] - below
    if inside <= 0:
        return bounds[i]
    return lower + (bounds[i] - lower) * (rank - below) / inside


@dataclasses.dataclass(slots=True)
class StatusTracker:
    """Config-applied times (a store listener) and counter snapshots for windowed deltas.

    Lives on the app under `TRACKER`; touched only on the event loop.
    """

    clock: Clock = time.time
    applied_at: dict[str, float] = dataclasses.field(default_factory=dict)
    snapshots: deque[tuple[float, Counts]] = dataclasses.field(
        default_factory=lambda: deque(maxlen=_MAX_SNAPSHOTS))

    def __post_init__(self) -> None:
        self.snapshots.append((self.clock(), {}))  # since start, until enough history

    def config_changed(self, change: ConfigChange) -> None:
        """Store listener: remember when each endpoint's config was applied here."""
        if change.kind is ChangeKind.APPLIED:
            self.applied_at[change.key] = self.clock()
        elif change.kind is ChangeKind.REMOVED:
            self.applied_at.pop(change.key, None)

    def baseline(self, now: float, counts: Counts) -> tuple[float, Counts]:
        """Record `counts` taken at `now`; return the (time, counts) to subtract."""
        base = self.snapshots[0]
        for snap in self.snapshots:
            if now - snap[0] >= WINDOW_SECONDS:
                base = snap
            else:
                break
        while len(self.snapshots) > 1 and now - self.snapshots[1][0] >= WINDOW_SECONDS:
            self.snapshots.popleft()
        if now - self.snapshots[-1][0] >= _MIN_SPACING:
            self.snapshots.append((now, dict(counts)))
        return base


TRACKER = web.AppKey("switchyard_ui_tracker", StatusTracker)


def _delta(now: Counts, then: Counts, key: tuple[str, ...]) -> float:
    return max(0.0, now.get(key, 0.0) - then.get(key, 0.0))


def _served(counts: Counts, endpoint: str, target: str) -> float:
    return sum(v for k, v in counts.items()
               if k[0] == "requests" and k[1] == endpoint and k[2] == target
               and k[3].startswith("2"))


def _target_view(t: CompiledTarget, role: str, position: int, endpoint: str,
                 now: Counts, then: Counts) -> dict[str, Any]:
    return {
        "name": t.name,
        "role": role,
        "position": position,
        "provider": t.provider.value,
        "model": t.model,
        "weight": t.weight if role == "split" else None,
        "served_total": _served(now, endpoint, t.name),
        "served_window": max(0.0, _served(now, endpoint, t.name) - _served(then, endpoint,
                                                                             t.name)),
        "fallback_served_total": now.get(("fallbacks", endpoint, t.name, "ok"), 0.0),
        "fallback_served_window": _delta(now, then, ("fallbacks", endpoint, t.name, "ok")),
        "input_tokens_total": now.get(("tokens", endpoint, t.name, "prompt"), 0.0),
        "output_tokens_total": now.get(("tokens", endpoint, t.name, "completion"), 0.0),
        "cost_usd_total": now.get(("cost", endpoint, t.name)),  # None: not priced
    }


def _latency(endpoint: str, now: Counts, then: Counts) -> dict[str, float | None]:
    buckets = {float(k[2]): _delta(now, then, k) for k in now
               if k[0] == "latency_bucket" and k[1] == endpoint}
    p50, p99 = quantile(0.5, buckets), quantile(0.99, buckets)
    return {"p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "p99_ms": None if p99 is None else round(p99 * 1000, 1)}


def endpoint_view(ep: CompiledEndpoint, now: Counts, then: Counts, seconds: float,
                  applied_at: float | None, clock_now: float) -> dict[str, Any]:
    """One endpoint's entry in the status JSON."""
    key = ep.key
    targets = [_target_view(t, "split", i + 1, key, now, then) for i, t in enumerate(ep.split)]
    targets += [_target_view(t, "fallback", i + 1, key, now, then)
                for i, t in enumerate(ep.fallbacks)]
    served = sum(t["served_window"] for t in targets)
    for t in targets:
        t["share"] = round(t["served_window"] / served, 4) if served else None
    window_requests = sum(_delta(now, then, k) for k in now
                          if k[0] == "requests" and k[1] == key)
    # A client that hung up (499, `client_closed`) is not a failure of the endpoint.
    errors = sum(_delta(now, then, k) for k in now
                 if k[0] == "requests" and k[1] == key and not k[3].startswith("2")
                 and k[3] != "499")
    return {
        "key": key,
        "task": ep.task.value,
        "spec_hash": ep.spec_hash,
        "generation": ep.generation,
        "applied_at": applied_at,
        "age_seconds": None if applied_at is None else round(clock_now - applied_at, 1),
        "requests_window": window_requests,
        "errors_window": errors,
        "requests_per_second": round(window_requests / seconds, 2) if seconds > 0 else 0.0,
        "fallbacks_window": sum(t["fallback_served_window"] for t in targets),
        "fallbacks_total": sum(t["fallback_served_total"] for t in targets),
        "latency": _latency(key, now, then),
        "targets": targets,
    }


def build_status(state: GatewayState, tracker: StatusTracker) -> dict[str, Any]:
    """The whole status document (see the module docstring)."""
    clock_now = tracker.clock()
    now = read_counts(state.metrics.render().decode())
    since, then = tracker.baseline(clock_now, now)
    seconds = max(clock_now - since, 1e-9)
    endpoints = [endpoint_view(ep, now, then, seconds, tracker.applied_at.get(key), clock_now)
                 for key, ep in sorted(state.store.snapshot().items())]
    return {
        "generated_at": clock_now,
        "window_seconds": round(seconds, 1),
        "ready": state.store.synced,
        "default_namespace": state.store.default_namespace,
        "rejected": dict(state.store.rejected()),
        "endpoints": endpoints,
    }


async def status_json(request: web.Request) -> web.Response:
    """GET /ui/status.json."""
    body = build_status(request.app[STATE], request.app[TRACKER])
    return web.json_response(body, headers={"cache-control": "no-store"})


def add_routes(app: web.Application, clock: Clock | None = None) -> None:
    """Register `/ui` and `/ui/status.json`; subscribe the tracker to the config store.

    Call after `app[STATE]` is set and before the app starts (sources sync at startup,
    so the tracker sees the first configs being applied).
    """
    tracker = StatusTracker(clock) if clock else StatusTracker()
    app[STATE].store.subscribe(tracker.config_changed)
    app[TRACKER] = tracker
    page = importlib.resources.files("switchyard_gateway.http").joinpath("ui.html").read_bytes()

    async def ui_page(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8",
                            headers={"cache-control": "no-store"})

    app.router.add_get("/ui", ui_page)
    app.router.add_get("/ui/", ui_page)
    app.router.add_get("/ui/status.json", status_json)
