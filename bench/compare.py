"""The side-by-side run: every system, alternating, each measured the same way.

Per system and round: start it (pinned, one worker), warm up with wrk (discarded), then
a closed-loop wrk run (throughput; CPU per request from /proc of the system and of
nginx), open-loop runs at fixed rates (p50/p99 from each request's due time), and an
open-loop streaming run (time to first byte). Systems are started fresh for every round,
in the same order each round, so a slow spell on the shared machine hits them all.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import openloop, procs, systems, wrk
from bench.upstream import Upstream


@dataclasses.dataclass(frozen=True)
class Plan:
    """How long each part runs."""

    warmup: float = 3.0
    closed_seconds: float = 10.0
    connections: int = 32
    rates: tuple[int, ...] = (200, 500)
    open_seconds: float = 10.0
    open_warmup: float = 2.0
    stream_rate: int = 50
    rounds: int = 3


@dataclasses.dataclass
class Sample:
    """One system in one round."""

    system: str
    rps: float
    errors: int
    cpu_us: float | None  # system CPU per successful request
    nginx_cpu_us: float
    rss_mb: float | None
    latency: dict[int, tuple[float, float, float]] = dataclasses.field(default_factory=dict)
    ttfb: tuple[float, float] | None = None


def _loop_run(coro: object) -> object:
    import uvloop
    return uvloop.run(coro)  # type: ignore[arg-type]


def measure(name: str, upstream: Upstream, nginx: procs.Child, folder: Path,
            plan: Plan) -> Sample:
    """Start one system, measure it, stop it."""
    running = systems.SYSTEMS[name](upstream, folder)
    body, headers = systems.chat_body("bench"), systems.HEADERS
    try:
        wrk.run(running.url, body, headers, seconds=plan.warmup, connections=plan.connections)
        child = running.child
        cpu0 = child.cpu_seconds() if child else 0.0
        ng0 = nginx.cpu_seconds()
        result = wrk.run(running.url, body, headers, seconds=plan.closed_seconds,
                         connections=plan.connections)
        ok = max(1, result.requests - result.errors)
        cpu = (child.cpu_seconds() - cpu0) / ok * 1e6 if child else None
        sample = Sample(name, result.ok_per_second, result.errors, cpu,
                        (nginx.cpu_seconds() - ng0) / ok * 1e6,
                        child.rss_bytes() / 2**20 if child else None)
        for rate in plan.rates:
            if rate > 0.9 * result.ok_per_second:
                continue  # saturated: the open-loop queue would only grow
            run = _loop_run(openloop.run(running.url, body, headers, rate=rate,
                                         seconds=plan.open_seconds, warmup=plan.open_warmup))
            assert isinstance(run, openloop.OpenLoopResult)
            sample.latency[rate] = (run.percentile(50), run.percentile(99), run.achieved)
        if name != "direct" and plan.stream_rate <= 0.9 * result.ok_per_second:
            run = _loop_run(openloop.run(
                running.url, systems.chat_body("bench-stream", stream=True), headers,
                rate=plan.stream_rate, seconds=plan.open_seconds, warmup=plan.open_warmup,
                first_byte=True))
            assert isinstance(run, openloop.OpenLoopResult)
            sample.ttfb = (run.percentile(50), run.percentile(99))
        return sample
    finally:
        running.stop()


def direct_ttfb(upstream: Upstream, plan: Plan) -> tuple[float, float]:
    """Streaming TTFB straight from nginx's SSE port (the floor for the TTFB overhead)."""
    url = f"http://127.0.0.1:{upstream.sse[0]}/v1/chat/completions"
    run = _loop_run(openloop.run(url, systems.chat_body("bench-stream", True), systems.HEADERS,
                                 rate=plan.stream_rate, seconds=plan.open_seconds,
                                 warmup=plan.open_warmup, first_byte=True))
    assert isinstance(run, openloop.OpenLoopResult)
    return run.percentile(50), run.percentile(99)


def run_all(names: Sequence[str], upstream: Upstream, nginx: procs.Child, folder: Path,
            plan: Plan) -> list[Sample]:
    """Every system, `plan.rounds` times, alternating."""
    samples: list[Sample] = []
    for round_ in range(plan.rounds):
        for name in names:
            print(f"[bench] round {round_ + 1}/{plan.rounds}: {name}", file=sys.stderr)
            sample = measure(name, upstream, nginx, folder, plan)
            if name == "direct":
                sample.ttfb = direct_ttfb(upstream, plan)
            print(f"[bench]   {sample}", file=sys.stderr)
            samples.append(sample)
    return samples


def median(values: Sequence[float | None]) -> float | None:
    """Median of the values that exist."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
