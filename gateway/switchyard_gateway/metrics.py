"""Prometheus metrics and the JSON access log, from one request's `RequestTrace`.

One `GatewayMetrics` per app, with its own `CollectorRegistry` (no module globals, so two
apps in one test process do not share counters). The HTTP layer calls `observe_request`
once per request; the config store's listener hook calls `config_changed`. Labels are
endpoint keys, target names, outcomes and hashes only, plus the caller's namespace
(`--auth kubernetes`, bounded by `kube_auth.CallerLabels`; "-" when caller identity is off):
never key material, bodies, tokens or ServiceAccount names.

With `--workers N` (PROMETHEUS_MULTIPROC_DIR set, see `workers.py`) every worker writes
its samples to that folder and `render` returns the sum over live workers; gauges say how
they aggregate (`multiprocess_mode`). The staleness gauge is computed on scrape, so it
lives in a per-worker registry and reports the worker that answered the scrape.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import time
from typing import Any

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
from switchyard_gateway.pricing import PriceTable
from switchyard_gateway.providers.base import Usage
from switchyard_gateway.routing.router import RequestTrace

access_log = logging.getLogger("switchyard.access")
log = logging.getLogger(__name__)

#: Label children kept by `GatewayMetrics._child` before the memo is emptied.
_MAX_CHILDREN = 10_000
#: Writes up to this size are atomic on a pipe (POSIX minimum 512, Linux 4096).
_PIPE_BUF = getattr(select, "PIPE_BUF", 512)
#: The GenAI semantic conventions' advised buckets for `gen_ai.client.token.usage`.
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                  16777216, 67108864)
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
        self.broken_streams = Counter("switchyard_streams_broken", "Streams cut after "
                                      "content was sent, by endpoint, target and failure kind",
                                      ["endpoint", "target", "reason"], registry=r)
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
        self.token_usage = Histogram(
            "gen_ai_client_token_usage", "GenAI semantic conventions: tokens per served "
            "request as the provider reported them, by endpoint, target, upstream model, "
            "caller namespace ('-': caller identity off) and token type (input, output)",
            ["endpoint", "target", "model", "caller_namespace", "token_type"],
            buckets=_TOKEN_BUCKETS, registry=r)
        self.cost = Counter("switchyard_cost_usd", "US dollars the served requests cost, "
                            "by the price table (--prices-file), by endpoint, target, "
                            "upstream model and caller namespace; unpriced models count 0",
                            ["endpoint", "target", "model", "caller_namespace"], registry=r)
        #: The price table (None: no cost is counted).
        self.prices: PriceTable | None = None
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
        self.caller_requests = Counter(
            "switchyard_caller_requests", "Requests by caller namespace (--auth kubernetes: "
            "the ServiceAccount's namespace, 'other' or 'none'), endpoint and HTTP status",
            ["caller_namespace", "endpoint", "status"], registry=r)
        self.shed = Counter("switchyard_shed_requests", "Requests refused by load shedding",
                            ["scope"], registry=r)
        self.propagation = Histogram(
            "switchyard_config_propagation_seconds", "Operator render (ConfigMap "
            "switchyard.dev/rendered-at) to applied in this gateway",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)
        self.report_writes = Counter(
            "switchyard_status_report_writes", "Writes of this replica's status report "
            "ConfigMap (report.py): outcome ok or failed", ["outcome"], registry=r)
        self.cooldowns_adopted = Counter(
            "switchyard_cooldowns_adopted", "Target cooldowns this replica adopted from "
            "another replica's status report (shared cooldown, peers.py)", registry=r)
        self.refused_configmaps = Counter(
            "switchyard_configmaps_refused", "ConfigMaps refused: forged (no live owning "
            "GatewayEndpoint), invalid (payload does not validate), unsigned, bad_signature, "
            "replayed (not as the operator signed it) or policy (outside the allow-lists)",
            ["reason"], registry=r)
        # -- upstream connections (transport.Observer) --------------------------------
        self.upstream_events = UpstreamEvents(
            Counter("switchyard_upstream_limit_exceeded", "Upstream answers refused for "
                    "crossing a limit (headers, body, decompressed, sse_line, sse_event)",
                    ["limit"], registry=r),
            Counter("switchyard_upstream_addresses_refused", "Upstream connections refused "
                    "by the address policy (link-local, cloud metadata)", registry=r),
            Counter("switchyard_upstream_stale_retries", "Requests resent on a fresh "
                    "connection after a reused one closed before answering, or after an "
                    "HTTP/2 server did not process the stream", registry=r),
            Gauge("switchyard_upstream_queued", "Requests waiting for a connection to an "
                  "origin at its connection limit", registry=r, multiprocess_mode="livesum"),
            Histogram("switchyard_upstream_queue_wait_seconds", "Time requests waited for a "
                      "connection to an origin at its limit (granted or refused)",
                      buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                      registry=r),
            Counter("switchyard_upstream_overloaded", "Attempts refused because no "
                    "connection to the origin became free within the capacity wait",
                    registry=r))
        self._local = CollectorRegistry(auto_describe=True)
        self.staleness = Gauge(
            "switchyard_config_staleness_seconds", "Seconds since the least recently heard-from "
            "watch reached the API server (grows while it is unreachable)",
            registry=self._local)
        self._hashes: dict[str, str] = {}
        self._children: dict[tuple[object, ...], Any] = {}
        self._fast: dict[tuple[str, str, int, str, str, str], tuple[Any, ...]] = {}

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
        """Count one finished request and its attempts.

        Label children are looked up once per label set and kept (`_child`): `labels()`
        costs about 0.7 us a call, several times per request.
        """
        attempts = trace.attempts
        if len(attempts) == 1 and attempts[0].outcome == "ok":
            # The common case (one successful attempt, streamed or not): its children
            # found with one lookup.
            fast_key = (trace.endpoint, trace.target, status, attempts[0].target, trace.model,
                        trace.caller_namespace)
            fast = self._fast.get(fast_key)
            if fast is None:
                fast = self._fast_children(fast_key)
            requests, latency, attempt, upstream, prompt, completion, inputs, outputs = fast
            requests.inc()
            latency.observe(seconds)
            attempt.inc()
            if trace.upstream_seconds is not None:
                upstream.observe(trace.upstream_seconds)
            if trace.first_token_seconds is not None:
                self._child(self.ttft, trace.endpoint or "-", attempts[0].target).observe(
                    trace.first_token_seconds)
            usage = trace.usage
            if usage is not None:
                prompt.inc(usage.prompt_tokens)
                completion.inc(usage.completion_tokens)
                inputs.observe(usage.prompt_tokens)
                outputs.observe(usage.completion_tokens)
                if self.prices is not None:
                    self._cost(self.prices, trace, attempts[0].target, usage)
            return
        endpoint = trace.endpoint or "-"
        child = self._child
        child(self.requests, endpoint, trace.target or "-", str(status)).inc()
        child(self.latency, endpoint).observe(seconds)
        first = attempts[0].target if attempts else ""
        for attempt in attempts:
            child(self.attempts, endpoint, attempt.target, attempt.outcome).inc()
            if attempt.target != first:  # a same-target retry is not a fallback
                child(self.fallbacks, endpoint, attempt.target, attempt.outcome).inc()
        if trace.broken is not None:
            child(self.broken_streams, endpoint, trace.target or "-", trace.broken).inc()
        if not attempts or attempts[-1].outcome != "ok":
            return
        target = attempts[-1].target
        if trace.upstream_seconds is not None:
            child(self.upstream, endpoint, target).observe(trace.upstream_seconds)
        if trace.first_token_seconds is not None:
            child(self.ttft, endpoint, target).observe(trace.first_token_seconds)
        if trace.usage is not None:
            child(self.tokens, endpoint, target, "prompt").inc(trace.usage.prompt_tokens)
            child(self.tokens, endpoint, target, "completion").inc(
                trace.usage.completion_tokens)
            model, caller = trace.model or "-", trace.caller_namespace or "-"
            child(self.token_usage, endpoint, target, model, caller, "input").observe(
                trace.usage.prompt_tokens)
            child(self.token_usage, endpoint, target, model, caller, "output").observe(
                trace.usage.completion_tokens)
            if self.prices is not None:
                self._cost(self.prices, trace, target, trace.usage)

    def _cost(self, prices: PriceTable, trace: RequestTrace, target: str,
              usage: Usage) -> None:
        """The served attempt's cost, when its model is priced."""
        cost = prices.cost(trace.model, usage)
        if cost is not None:
            self._child(self.cost, trace.endpoint or "-", target, trace.model,
                        trace.caller_namespace or "-").inc(cost)

    def count_caller(self, trace: RequestTrace, status: int) -> None:
        """Count one request by its caller's namespace label (`http/kube_auth.py`)."""
        self._child(self.caller_requests, trace.caller_namespace, trace.endpoint or "-",
                    str(status)).inc()

    def _fast_children(self, key: tuple[str, str, int, str, str, str]) -> tuple[Any, ...]:
        endpoint, target, status, attempted, model, caller = key
        endpoint, model, caller = endpoint or "-", model or "-", caller or "-"
        child = self._child
        found = (child(self.requests, endpoint, target or "-", str(status)),
                 child(self.latency, endpoint),
                 child(self.attempts, endpoint, attempted, "ok"),
                 child(self.upstream, endpoint, attempted),
                 child(self.tokens, endpoint, attempted, "prompt"),
                 child(self.tokens, endpoint, attempted, "completion"),
                 child(self.token_usage, endpoint, attempted, model, caller, "input"),
                 child(self.token_usage, endpoint, attempted, model, caller, "output"))
        if len(self._fast) >= _MAX_CHILDREN:
            self._fast.clear()
        self._fast[key] = found
        return found

    def streams_open(self, endpoint: str) -> Any:
        """The open-streams gauge child of `endpoint` (memoised like the others)."""
        return self._child(self.active_streams, endpoint)

    def _child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, memoised (bounded: cleared past `_MAX_CHILDREN`)."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            if len(self._children) >= _MAX_CHILDREN:
                self._children.clear()
            found = self._children[key] = metric.labels(*labels)
        return found


class AccessLogWriter:
    """Access lines straight to a file descriptor (stderr by default), written in batches.

    The `--access-log stderr` sink (the CLI default). Going through `logging` costs about
    10 us a line (a LogRecord, the formatter, a lock and a write syscall per line); this
    costs an `orjson.dumps` and a list append, and one `os.write` per batch: when
    `max_bytes` are buffered or `max_delay` seconds after the first line of a batch,
    whichever comes first. `close` (app cleanup) writes what is left.
    """

    def __init__(self, fd: int = 2, max_delay: float = 0.05, max_bytes: int = 64 * 1024) -> None:
        self._fd = fd
        self._max_delay = max_delay
        self._max_bytes = max_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def write(self, line: bytes) -> None:
        """Queue one line (with its newline)."""
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self._max_bytes:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_delay, self.flush)

    def flush(self) -> None:
        """Write every queued line now, in writes of whole lines of at most PIPE_BUF bytes
        (atomic on a pipe, so the lines of `--workers N` processes never interleave)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._lines, self._size = self._lines, [], 0
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > _PIPE_BUF:
                self._write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write(b"".join(chunk))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            for _ in range(10_000):  # bounded; a blocking fd takes something every call
                if not view:
                    return
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            log.warning("access log: cannot write to fd %d (%s); lines dropped", self._fd,
                        type(exc).__name__)

    def close(self) -> None:
        """Write what is left (called at shutdown)."""
        self.flush()


def access_line(trace: RequestTrace, *, method: str, path: str, status: int,
                seconds: float) -> bytes:
    """One access log line (JSON, newline-terminated): routing facts only, never bodies or keys."""
    usage = trace.usage
    line = {
        "ts": round(time.time(), 3),
        "request_id": trace.request_id,
        "method": method,
        "path": path,
        "status": status,
        "outcome": "client_closed" if trace.client_closed
        else "stream_broken" if trace.broken is not None
        else "ok" if status < 400 else "error",
        "reason": trace.broken,
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
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
    }
    return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)


def log_access(trace: RequestTrace, *, method: str, path: str, status: int,
               seconds: float, writer: AccessLogWriter | None = None) -> None:
    """One JSON line per request: to `writer` when given, else the `switchyard.access` logger."""
    if writer is not None:
        writer.write(access_line(trace, method=method, path=path, status=status,
                                 seconds=seconds))
        return
    if not access_log.isEnabledFor(logging.INFO):
        return
    line = access_line(trace, method=method, path=path, status=status, seconds=seconds)
    access_log.info(line[:-1].decode())


class UpstreamEvents:
    """The transport's `Observer` over the upstream metrics (rare events only: a request
    that finds a connection at once is not seen here)."""

    def __init__(self, limits: Counter, refused: Counter, stale: Counter, queued: Gauge,
                 queue_wait: Histogram, overloaded: Counter) -> None:
        self._limits = limits
        self._refused = refused
        self._stale = stale
        self._queued = queued
        self._queue_wait = queue_wait
        self._overloaded = overloaded

    def limit_exceeded(self, limit: str) -> None:
        """Count an answer refused for crossing `limit`."""
        self._limits.labels(limit).inc()

    def address_refused(self) -> None:
        """Count a connection refused by the address policy."""
        self._refused.inc()

    def stale_retry(self) -> None:
        """Count a request resent after a stale keep-alive connection."""
        self._stale.inc()

    def queued(self) -> None:
        """One more request waits for a connection."""
        self._queued.inc()

    def dequeued(self, seconds: float, refused: bool) -> None:
        """A request stopped waiting; count it if it was refused."""
        self._queued.dec()
        self._queue_wait.observe(seconds)
        if refused:
            self._overloaded.inc()
