"""Open-loop load at a fixed rate, free of coordinated omission.

Request i is due at `start + i / rate`, whether or not earlier ones have answered, and
its latency is measured from that due time (not from when it was actually sent), so a
stall in the system under test shows up in every request it delays, as a user would see
it. Used for p50/p99 at 200 and 500 req/s and for streaming time to first byte. Times are
`perf_counter` (uvloop's loop clock has millisecond resolution). Bounded:
`rate * seconds` requests, each with its own timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import Mapping

import aiohttp


@dataclasses.dataclass(frozen=True)
class OpenLoopResult:
    """Latencies (ms) of the measured requests, after the warm-up."""

    offered: float
    latencies_ms: list[float]
    errors: int
    seconds: float

    @property
    def achieved(self) -> float:
        """Successful requests per second in the measured window."""
        return len(self.latencies_ms) / self.seconds

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of the latencies, in ms."""
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")[
            min(998, max(0, round(q * 10) - 1))]


async def _one(session: aiohttp.ClientSession, url: str, body: bytes,
               headers: Mapping[str, str], due: float, first_byte: bool,
               limit_seconds: float) -> float | None:
    try:
        async with asyncio.timeout(limit_seconds), session.post(url, data=body,
                                                          headers=headers) as reply:
            if first_byte:
                await reply.content.readany()
                latency = time.perf_counter() - due
                await reply.read()
            else:
                await reply.read()
                latency = time.perf_counter() - due
            return latency * 1000.0 if reply.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


async def run(url: str, body: bytes, headers: Mapping[str, str], *, rate: float,
              seconds: float, warmup: float, first_byte: bool = False,
              limit_seconds: float = 10.0) -> OpenLoopResult:
    """Offer `rate` req/s for `warmup + seconds`; keep the requests due after the warm-up."""
    connector = aiohttp.TCPConnector(limit=1024)
    async with aiohttp.ClientSession(connector=connector) as session:
        total = int(rate * (warmup + seconds))
        start = time.perf_counter() + 0.05
        tasks: list[tuple[float, asyncio.Task[float | None]]] = []
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append((due, asyncio.create_task(
                _one(session, url, body, headers, due, first_byte, limit_seconds))))
        measured_from = start + warmup
        latencies, errors = [], 0
        for due, task in tasks:
            latency = await task
            if due < measured_from:
                continue
            if latency is None:
                errors += 1
            else:
                latencies.append(latency)
    return OpenLoopResult(rate, latencies, errors, seconds)
