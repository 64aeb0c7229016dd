"""Chaos under load: a steady stream of requests through a real gateway while fakes fail.

`python -m bench.chaos --requests 20000 --rate 200` starts fake OpenAI and Anthropic
providers in this process (random faults: 429 with and without Retry-After, 500/502/503/
529, 401, hangs past the attempt timeout, resets before the response and mid-stream,
streams cut before their terminator, malformed JSON, slow drips, in-band stream errors),
a healthy fallback, a fallback whose port refuses connections, and one `switchyard
gateway` process (standalone, as its container runs it). Requests (streaming and not) are
sent open-loop at a fixed rate and every outcome is classified by `classify_*`:

- success: a JSON answer with content, or a stream that ends with `data: [DONE]`;
- well-formed error: OpenAI-style JSON with the right status (429/502/504 list their
  `attempts` and carry `x-switchyard-attempts`; 503 is load shedding), or a stream that
  ends with an explicit error event (a failure after the first content event);
- a violation: anything else (a truncated body with 200, a stream without terminator or
  error event, an unexpected status, a connection lost, or no answer by the deadline).

The bar: zero violations, and 100% success for non-streaming requests to the endpoint
that has a healthy fallback. `tests/reliability/test_chaos.py` runs a small version in
the suite; docs/reliability.md records the long run. Loopback only; the run is bounded in
count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import pathlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import yaml

from switchyard_testing import stack
from switchyard_testing.fakes import Behaviour, FakeAnthropic, FakeOpenAI, Fault, Script

KEYS = {"OPENAI_KEY": "sk-chaos-openai-31337", "ANTHROPIC_KEY": "sk-ant-chaos-42424",
        "HEALTHY_KEY": "sk-chaos-healthy-777"}

#: Fault mix drawn per upstream request by the faulty fakes (the rest succeed).
FAULT_RATES: Mapping[Fault, float] = {
    Fault.RATE_LIMIT: 0.03, Fault.RATE_LIMIT_BARE: 0.02, Fault.SERVER_ERROR: 0.03,
    Fault.BAD_GATEWAY: 0.02, Fault.UNAVAILABLE: 0.02, Fault.OVERLOADED: 0.02,
    Fault.UNAUTHORIZED: 0.01, Fault.HANG: 0.01, Fault.RESET: 0.03, Fault.CUT_STREAM: 0.03,
    Fault.RESET_STREAM: 0.03, Fault.MALFORMED: 0.03, Fault.SLOW: 0.02,
    Fault.IN_BAND_ERROR: 0.02,
}

POLICY = {"attemptTimeoutSeconds": 1, "streamIdleTimeoutSeconds": 1,
          "requestTimeoutSeconds": 15, "cooldown": {"enabled": False}}
#: A request with no answer this long after it was sent is a hang (a violation).
CLIENT_DEADLINE = POLICY["requestTimeoutSeconds"] + 10  # type: ignore[operator]

WITH_FALLBACK = "chaos"  # faulty split, then a refused port, then a healthy fallback
BARE = "chaos-bare"  # the faulty split alone: failures reach the caller


class CountingScript(Script):
    """A fake's script that counts what it drew, by fault kind."""

    def __init__(self, rates: Mapping[Fault, float], seed: int) -> None:
        super().__init__(rates, seed)
        self.drawn: Counter[str] = Counter()

    def next(self, model: str = "") -> Behaviour:
        """Draw (and count) the next behaviour."""
        behaviour = super().next(model)
        self.drawn[behaviour.fault.value] += 1
        return behaviour


@dataclasses.dataclass
class Report:
    """Everything one run measured."""

    requests: int = 0
    rate: float = 0.0
    seconds: float = 0.0
    faults: Counter[str] = dataclasses.field(default_factory=Counter)
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    attempts: Counter[str] = dataclasses.field(default_factory=Counter)
    violations: list[str] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)
    fallback_nonstream: Counter[str] = dataclasses.field(default_factory=Counter)

    def percentile(self, q: float) -> float:
        """Latency percentile in seconds (nearest rank)."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    def summary(self) -> dict[str, Any]:
        """A JSON-able digest."""
        ok = self.fallback_nonstream["ok"]
        total = sum(self.fallback_nonstream.values())
        return {
            "requests_sent": self.requests, "rate_per_s": self.rate,
            "seconds": round(self.seconds, 1),
            "faults_injected": dict(sorted(self.faults.items())),
            "upstream_attempts": dict(sorted(self.attempts.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "violations": len(self.violations), "violation_examples": self.violations[:10],
            "lost": sum(n for k, n in self.outcomes.items() if k.startswith("VIOLATION")),
            "nonstream_with_fallback_success": f"{ok}/{total}",
            "latency_p50_ms": round(self.percentile(0.50) * 1000, 1),
            "latency_p99_ms": round(self.percentile(0.99) * 1000, 1),
            "latency_max_ms": round(max(self.latencies, default=0.0) * 1000, 1),
        }


def _target(name: str, provider: str, url: str, env: str, weight: int | None = None,
            ) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "provider": provider, "model": name, "baseUrl": url,
                           "apiKey": {"envVar": env}}
    if weight is not None:
        out["weight"] = weight
    return out


def manifests(openai_url: str, anthropic_url: str, healthy_url: str,
              refused_url: str) -> list[dict[str, Any]]:
    """The two chaos endpoints."""
    split = [_target("p-openai", "openai", openai_url, "OPENAI_KEY", 60),
             _target("p-anthropic", "anthropic", anthropic_url, "ANTHROPIC_KEY", 40)]

    def doc(name: str, fallbacks: list[dict[str, Any]]) -> dict[str, Any]:
        spec: dict[str, Any] = {"task": "chat", "trafficSplit": split, "policy": POLICY}
        if fallbacks:
            spec["fallbacks"] = fallbacks
        return {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
                "metadata": {"name": name}, "spec": spec}

    return [doc(WITH_FALLBACK, [_target("refused", "openai", refused_url, "HEALTHY_KEY"),
                                _target("healthy", "openai", healthy_url, "HEALTHY_KEY")]),
            doc(BARE, [])]


def _is_error_body(raw: bytes) -> dict[str, Any] | None:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and all(isinstance(error.get(k), str)
                                       for k in ("message", "type", "code")):
        return error
    return None


def classify_error(status: int, headers: Mapping[str, str], raw: bytes) -> str:
    """The outcome of a non-200 answer: `error_<status>` or a VIOLATION."""
    error = _is_error_body(raw)
    if error is None:
        return f"VIOLATION:malformed_error_body_{status}"
    if status in (429, 502, 504):
        if not isinstance(error.get("attempts"), list) or "x-switchyard-attempts" not in headers:
            return f"VIOLATION:no_attempts_{status}"
        return f"error_{status}"
    if status == 503 and error["code"] == "overloaded" and "retry-after" in headers:
        return "shed_503"
    return f"VIOLATION:unexpected_status_{status}"


def classify_json(raw: bytes) -> str:
    """The outcome of a non-streaming 200."""
    try:
        body = orjson.loads(raw)
        content = body["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return "VIOLATION:truncated_success"
    return "ok" if isinstance(content, str) and content else "VIOLATION:empty_success"


def classify_stream(frames: list[bytes]) -> str:
    """The outcome of a streaming 200 from its `data:` payloads."""
    if not frames:
        return "VIOLATION:empty_stream"
    *body, last = frames
    for frame in body:
        try:
            chunk = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return "VIOLATION:malformed_frame"
        if "error" in chunk:
            return "VIOLATION:error_before_end"
    if last == b"[DONE]":
        return "stream_ok" if body else "VIOLATION:done_without_content"
    error = _is_error_body(last)
    return "stream_error_event" if error is not None else "VIOLATION:stream_unterminated"


async def one_request(http: aiohttp.ClientSession, url: str, model: str,
                      stream: bool) -> str:
    """Send one request and classify how it ended."""
    body = {"model": model, "stream": stream,
            "messages": [{"role": "user", "content": "chaos"}]}
    try:
        async with asyncio.timeout(CLIENT_DEADLINE), http.post(
                url + "/v1/chat/completions", json=body) as resp:
            if resp.status != 200:
                return classify_error(resp.status, resp.headers, await resp.read())
            if not stream:
                return classify_json(await resp.read())
            frames = [line[6:].strip() async for line in resp.content
                      if line.startswith(b"data: ")]
            return classify_stream(frames)
    except TimeoutError:
        return "VIOLATION:hung"
    except aiohttp.ClientError as exc:
        return f"VIOLATION:lost_{type(exc).__name__}"


@contextlib.asynccontextmanager
async def chaos_stack(workdir: pathlib.Path, seed: int,
                      rates: Mapping[Fault, float]) -> AsyncIterator[tuple[stack.Service,
                                                                          list[CountingScript]]]:
    """The fakes and a gateway process over the chaos endpoints."""
    scripts = [CountingScript(rates, seed), CountingScript(rates, seed + 1)]
    async with await FakeOpenAI.start(name="p-openai", script=scripts[0],
                                      expected_key=KEYS["OPENAI_KEY"]) as faulty, \
            await FakeAnthropic.start(name="p-anthropic", script=scripts[1],
                                      expected_key=KEYS["ANTHROPIC_KEY"]) as faulty_ant, \
            await FakeOpenAI.start(name="healthy", expected_key=KEYS["HEALTHY_KEY"]) as healthy:
        refused = f"http://127.0.0.1:{stack.free_port()}"  # nothing listens there
        cfg = workdir / "cfg"
        cfg.mkdir(parents=True, exist_ok=True)
        docs = manifests(faulty.base_url, faulty_ant.base_url, healthy.base_url, refused)
        (cfg / "chaos.yaml").write_text(yaml.safe_dump_all(docs))
        gateway = stack.gateway(None, workdir, config=cfg, env=dict(KEYS),
                                extra=["--log-level", "WARNING"])
        gateway.start()
        try:
            await asyncio.to_thread(gateway.wait_for, "/readyz", 60.0)
            yield gateway, scripts
        finally:
            await asyncio.to_thread(gateway.stop, 20.0)


async def _attempt_counts(url: str) -> Counter[str]:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        text = await resp.text()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("switchyard_attempts_total{"):
            labels, _, value = line.rpartition(" ")
            target = labels.split('target="', 1)[1].split('"', 1)[0]
            outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
            counts[f"{target}:{outcome}"] += int(float(value))
    return counts


async def run(requests: int, rate: float, *, stream_share: float = 0.5,
              bare_share: float = 0.2, seed: int = 7,
              workdir: pathlib.Path | None = None) -> Report:
    """One chaos run; returns the report (the caller judges it)."""
    rng = random.Random(seed)
    report = Report(requests=requests, rate=rate)
    with tempfile.TemporaryDirectory(prefix="switchyard-chaos-") as tmp:
        folder = workdir or pathlib.Path(tmp)
        async with chaos_stack(folder, seed, FAULT_RATES) as (gateway, scripts):
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                loop = asyncio.get_running_loop()
                started = loop.time()
                tasks: list[asyncio.Task[None]] = []

                async def timed(model: str, stream: bool) -> None:
                    t0 = loop.time()
                    outcome = await one_request(http, gateway.url, model, stream)
                    report.latencies.append(loop.time() - t0)
                    kind = f"{'stream' if stream else 'json'}:{model}:{outcome}"
                    report.outcomes[kind] += 1
                    if outcome.startswith("VIOLATION"):
                        report.violations.append(kind)
                    if model == WITH_FALLBACK and not stream:
                        report.fallback_nonstream["ok" if outcome == "ok" else outcome] += 1

                for i in range(requests):
                    await asyncio.sleep(max(0.0, started + i / rate - loop.time()))
                    model = BARE if rng.random() < bare_share else WITH_FALLBACK
                    tasks.append(asyncio.create_task(timed(model, rng.random() < stream_share)))
                await asyncio.wait(tasks, timeout=CLIENT_DEADLINE + 30)
                report.seconds = loop.time() - started
            report.attempts = await _attempt_counts(gateway.admin_url)
        for script in scripts:
            report.faults.update(script.drawn)
    return report


def render_markdown(summary: Mapping[str, Any]) -> str:
    """The figures as a Markdown table (for docs/reliability.md)."""
    rows = [f"| {k} | `{json.dumps(v)}` |" for k, v in summary.items()]
    return "\n".join(["| figure | value |", "|---|---|", *rows])


def main(argv: list[str] | None = None) -> int:
    """Command line: run, print the figures, exit 1 when the bar is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--stream-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    args = parser.parse_args(argv)
    # The fakes' server logs a traceback whenever the gateway drops a hanging attempt.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    t0 = time.monotonic()
    report = asyncio.run(run(args.requests, args.rate, stream_share=args.stream_share,
                             seed=args.seed))
    summary = report.summary()
    summary["wall_seconds"] = round(time.monotonic() - t0, 1)
    print(render_markdown(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    ok = report.fallback_nonstream["ok"] == sum(report.fallback_nonstream.values())
    return 0 if not report.violations and ok else 1


if __name__ == "__main__":
    sys.exit(main())
