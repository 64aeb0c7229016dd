"""Prometheus metrics and the JSON access log, from one request's `RequestTrace`.

One `GatewayMetrics` per app, with its own `CollectorRegistry` (no module globals, so two
apps in one test process do not share counters). The HTTP layer calls `observe_request`
once per request; the config store's listener hook calls `config_changed`. Labels are
endpoint keys, target names, outcomes and hashes only: never key material, bodies or
caller identities.

With `--workers N` (PROMETHEUS_MULTIPROC_DIR set, see `workers.py`) every worker writes
its samples to that folder and `render` returns the sum over live workers; gauges say how
they aggregate (`multiprocess_mode`). The staleness gauge is computed on scrape, so it
lives in a per-worker registry and reports the worker that answered the scrape.
"""

from __future__ import annotations

import logging
import os
import time

import orjson
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from switchyard_gateway.config.store import ChangeKind, ConfigChange
from switchyard_gateway.routing.router import RequestTrace

access_log = logging.getLogger("switchyard.access")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class GatewayMetrics:
    """Every metric the gateway exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("switchyard_requests", "Requests by endpoint, serving target "
                                "and HTTP status", ["endpoint", "target", "status"], registry=r)
        self.attempts = Counter("switchyard_attempts", "Upstream attempts (and skips) by "
                                "endpoint, target and outcome", ["endpoint", "target", "outcome"],
                                registry=r)
        self.fallbacks = Counter("switchyard_fallbacks", "Requests served by, or failed on, "
                                 "a target other than the first one tried",
                                 ["endpoint", "target", "outcome"], registry=r)
        self.latency = Histogram("switchyard_request_duration_seconds", "Whole request time",
                                 ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream = Histogram("switchyard_upstream_duration_seconds", "Time of the "
                                  "successful attempt", ["endpoint", "target"],
                                  buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("switchyard_time_to_first_token_seconds", "Streaming: attempt "
                              "start to first content event", ["endpoint", "target"],
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("switchyard_tokens", "Tokens reported by providers",
                              ["endpoint", "target", "kind"], registry=r)
        self.active_streams = Gauge("switchyard_active_streams", "Streams being relayed",
                                    ["endpoint"], registry=r, multiprocess_mode="livesum")
        self.in_flight = Gauge("switchyard_in_flight_requests", "Requests in flight",
                               registry=r, multiprocess_mode="livesum")
        self.config_events = Counter("switchyard_config_changes", "Config changes by kind "
                                     "(applied, unchanged, removed, rejected)",
                                     ["endpoint", "kind"], registry=r)
        self.config_hash = Gauge("switchyard_endpoint_config_info", "1 for the applied config "
                                 "hash of each endpoint", ["endpoint", "spec_hash"], registry=r,
                                 multiprocess_mode="livemax")
        self.shed = Counter("switchyard_shed_requests", "Requests refused by load shedding",
                            ["scope"], registry=r)
        self.propagation = Histogram(
            "switchyard_config_propagation_seconds", "Operator render (ConfigMap "
            "switchyard.dev/rendered-at) to applied in this gateway",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)
        self.refused_configmaps = Counter(
            "switchyard_configmaps_refused", "ConfigMaps refused: forged (no live owning "
            "GatewayEndpoint) or invalid (payload does not validate)", ["reason"], registry=r)
        self._local = CollectorRegistry(auto_describe=True)
        self.staleness = Gauge(
            "switchyard_config_staleness_seconds", "Seconds since the least recently heard-from "
            "watch reached the API server (grows while it is unreachable)",
            registry=self._local)
        self._hashes: dict[str, str] = {}

    def render(self) -> bytes:
        """The text exposition format for `/metrics` (summed over workers in multi-process mode)."""
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry)) + bytes(generate_latest(self._local))

    def config_changed(self, change: ConfigChange) -> None:
        """Store listener: count the change and keep the applied-hash gauge current."""
        self.config_events.labels(change.key, change.kind.value).inc()
        if change.kind is ChangeKind.APPLIED:
            self._set_hash(change.key, change.spec_hash)
        elif change.kind is ChangeKind.REMOVED:
            self._set_hash(change.key, None)

    def _set_hash(self, key: str, spec_hash: str | None) -> None:
        old = self._hashes.pop(key, None)
        if old is not None:
            # Zero first: in multi-process mode `remove` leaves the sample in the shared file.
            self.config_hash.labels(key, old).set(0)
            self.config_hash.remove(key, old)
        if spec_hash is not None:
            self._hashes[key] = spec_hash
            self.config_hash.labels(key, spec_hash).set(1)

    def observe_request(self, trace: RequestTrace, status: int, seconds: float) -> None:
        """Count one finished request and its attempts."""
        endpoint = trace.endpoint or "-"
        self.requests.labels(endpoint, trace.target or "-", str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        for i, attempt in enumerate(trace.attempts):
            self.attempts.labels(endpoint, attempt.target, attempt.outcome).inc()
            if i > 0:
                self.fallbacks.labels(endpoint, attempt.target, attempt.outcome).inc()
        if not trace.attempts or trace.attempts[-1].outcome != "ok":
            return
        target = trace.attempts[-1].target
        if trace.upstream_seconds is not None:
            self.upstream.labels(endpoint, target).observe(trace.upstream_seconds)
        if trace.first_token_seconds is not None:
            self.ttft.labels(endpoint, target).observe(trace.first_token_seconds)
        if trace.usage is not None:
            self.tokens.labels(endpoint, target, "prompt").inc(trace.usage.prompt_tokens)
            self.tokens.labels(endpoint, target, "completion").inc(trace.usage.completion_tokens)


def log_access(trace: RequestTrace, *, method: str, path: str, status: int,
               seconds: float) -> None:
    """One JSON line per request: routing facts only, never bodies or keys."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    line = {
        "ts": round(time.time(), 3),
        "request_id": trace.request_id,
        "method": method,
        "path": path,
        "status": status,
        "endpoint": trace.endpoint or None,
        "target": trace.target or None,
        "attempts": [
            {"target": a.target, "outcome": a.outcome, "status": a.status,
             "ms": a.duration_ms, "sent": a.sent}
            for a in trace.attempts
        ],
        "stream": trace.stream,
        "duration_ms": round(seconds * 1000.0, 1),
        "upstream_ms": None if trace.upstream_seconds is None
        else round(trace.upstream_seconds * 1000.0, 1),
        "ttft_ms": None if trace.first_token_seconds is None
        else round(trace.first_token_seconds * 1000.0, 1),
        "prompt_tokens": trace.usage.prompt_tokens if trace.usage else None,
        "completion_tokens": trace.usage.completion_tokens if trace.usage else None,
    }
    access_log.info(orjson.dumps(line).decode())
