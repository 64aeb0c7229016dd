"""Run a real gateway process against a hostile upstream and measure what it costs.

The gateway (`switchyard gateway`, a subprocess, as its container runs it) serves one
endpoint whose split target is the hostile server and whose fallback is a fake OpenAI
provider. While the official `openai` SDK sends one request, a thread polls `/healthz`;
afterwards the gateway's peak RSS (VmHWM) is compared with its idle peak. Used by
`test_hostile_upstreams.py`; `python -m tests.integration.transport.siege ATTACK` prints
the figures (pass `--no-limits` to run a gateway without the upstream flags, e.g. an
older one, for a before/after comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import pathlib
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

import openai
import yaml

from switchyard_testing import stack
from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import endpoint, openai_target
from tests.integration.transport import hostile
from tests.integration.transport.wire import Handler, Server

KEY = "sk-siege-4242"
MIB = 1024 * 1024
#: The limits the siege gateway runs with: small, so "idle + limits" is a tight bound.
LIMITS = {"header-bytes": 64 * 1024, "body-bytes": 4 * MIB, "decompressed-bytes": 4 * MIB,
          "sse-line-bytes": 1 * MIB, "sse-event-bytes": 2 * MIB}
LIMIT_FLAGS = [arg for name, value in LIMITS.items()
               for arg in (f"--upstream-max-{name}", str(value))]

#: name -> (handler factory, streaming request?)
ATTACKS: dict[str, tuple[Callable[[hostile.Sent], Handler], bool]] = {
    "headers": (lambda sent: hostile.endless_headers(200 * 1000 * 1000, sent), False),
    "body": (lambda sent: hostile.huge_body(200 * 1000 * 1000, sent), False),
    "gzip": (lambda sent: hostile.gzip_bomb(300 * MIB, sent), False),
    "sse": (lambda sent: hostile.endless_sse_line(200 * 1000 * 1000, sent), True),
}


@dataclasses.dataclass
class Result:
    """What one siege measured."""

    served_by: str
    healthz_max_ms: float
    healthz_p50_ms: float
    idle_hwm_mib: float
    peak_hwm_mib: float
    seconds: float
    upstream_sent_mib: float
    limit_metrics: dict[str, float]

    def line(self, attack: str) -> str:
        return (f"{attack}: served by {self.served_by or '-'} in {self.seconds:.2f}s; "
                f"/healthz max {self.healthz_max_ms:.1f} ms (p50 {self.healthz_p50_ms:.1f}); "
                f"VmHWM {self.idle_hwm_mib:.1f} -> {self.peak_hwm_mib:.1f} MiB; upstream "
                f"got {self.upstream_sent_mib:.1f} MiB out; limits {self.limit_metrics}")


def hwm_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert match is not None
    return int(match.group(1)) / 1024


class HealthPoller(threading.Thread):
    """GETs /healthz on one keep-alive connection back to back, recording latencies."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            started = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            self.latencies.append((time.perf_counter() - started) * 1000)
            self.stop.wait(0.005)
        conn.close()


async def siege(folder: pathlib.Path, attack: str, flags: Sequence[str] = LIMIT_FLAGS) -> Result:
    """Run `attack` against a fresh gateway; return the figures."""
    make, stream = ATTACKS[attack]
    sent = hostile.Sent()
    server = await Server(make(sent)).start()
    async with await FakeOpenAI.start(name="fallback", expected_key=KEY) as fake:
        docs = [endpoint("chat", [openai_target("hostile", server.url("/v1"), "P_KEY",
                                                weight=100)],
                         fallbacks=[openai_target("fallback", fake.base_url, "P_KEY")]),
                endpoint("warm", [openai_target("warm", fake.base_url, "P_KEY", weight=100)])]
        (folder / "endpoints.yaml").write_text(yaml.safe_dump_all(docs))
        gw = stack.gateway(None, folder, config=folder / "endpoints.yaml", extra=list(flags),
                           env={"P_KEY": KEY})
        gw.start()
        try:
            await asyncio.to_thread(gw.wait_for, "/readyz", 60.0)
            pid = gw.process.pid
            assert pid is not None
            async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused",
                                          max_retries=0, timeout=120) as client:
                for model in ("warm", "warm"):  # code paths loaded: the idle peak
                    await _ask(client, model, stream)
                idle = hwm_mib(pid)
                poller = HealthPoller(gw.port)
                poller.start()
                started = time.perf_counter()
                try:
                    served_by = await _ask(client, "chat", stream)
                finally:
                    seconds = time.perf_counter() - started
                    await asyncio.sleep(0.2)
                    poller.stop.set()
                    await asyncio.to_thread(poller.join, 15)
            peak = hwm_mib(pid)
            _, metrics = await asyncio.to_thread(gw.admin_get, "/metrics")
        finally:
            await asyncio.to_thread(gw.stop, 15.0)
            await server.stop()
    metric = "switchyard_upstream_limit_exceeded_total"
    counted = {name: stack.metric_value(metrics.decode(), metric, limit=name)
               for name in ("headers", "body", "decompressed", "sse_line", "sse_event")}
    latencies = sorted(poller.latencies) or [0.0]
    return Result(served_by, latencies[-1], latencies[len(latencies) // 2], idle, peak,
                  seconds, sent.bytes / MIB, {k: v for k, v in counted.items() if v})


async def _ask(client: openai.AsyncOpenAI, model: str, stream: bool) -> str:
    """One chat request; returns the target that served it (x-switchyard-target)."""
    messages: list[dict[str, str]] = [{"role": "user", "content": "hi"}]
    raw = await client.chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=stream)  # type: ignore[call-overload]
    target = raw.headers.get("x-switchyard-target", "")
    reply = raw.parse()
    if stream:
        chunks = [chunk async for chunk in reply]
        assert chunks
    else:
        assert reply.choices[0].message.content
    return str(target)


def main() -> None:
    """Print one attack's figures (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("attack", choices=sorted(ATTACKS))
    parser.add_argument("--no-limits", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        try:
            result = asyncio.run(siege(pathlib.Path(folder), args.attack,
                                       [] if args.no_limits else LIMIT_FLAGS))
            print(result.line(args.attack))
        except Exception as exc:  # a gateway without limits may fail the request
            print(f"{args.attack}: request failed: {exc!r}")


if __name__ == "__main__":
    main()
