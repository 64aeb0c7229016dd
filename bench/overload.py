"""Load shedding at twice the sustainable load: admitted latency stays flat, the rest is 503.

`python -m bench.overload` starts an upstream that answers every request after a fixed
delay, and a `switchyard gateway` process (standalone) whose in-flight cap makes the
sustainable rate known in advance: cap / delay. It then sends an open-loop fixed rate of
twice that for a bounded time and reports, per cap scope (gateway-wide `--max-in-flight`,
per-endpoint `policy.maxInFlight`): requests admitted and shed, that every shed answer is a
503 with Retry-After and an OpenAI-style body, and the latency of admitted and shed
requests. Without shedding, the queue would grow without bound and the admitted latency
with it. Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pathlib
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import yaml
from aiohttp import web

from switchyard_testing import stack

BODY = orjson.dumps(
    {
        "id": "chatcmpl-overload",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
)


@contextlib.asynccontextmanager
async def slow_upstream(delay: float) -> AsyncIterator[str]:
    """An OpenAI-compatible upstream answering after `delay` seconds; yields its base URL."""

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(delay)
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def manifest(base_url: str, per_endpoint_cap: int) -> dict[str, Any]:
    policy: dict[str, Any] = {"attemptTimeoutSeconds": 30, "cooldown": {"enabled": False}}
    if per_endpoint_cap:
        policy["maxInFlight"] = per_endpoint_cap
    return {
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "GatewayEndpoint",
        "metadata": {"name": "chat"},
        "spec": {
            "trafficSplit": [
                {
                    "name": "slow",
                    "provider": "openai-compatible",
                    "model": "m",
                    "baseUrl": base_url,
                    "weight": 100,
                }
            ],
            "policy": policy,
        },
    }


async def drive(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: one request every 1/rate s, whatever the answers; classify each."""
    admitted: list[float] = []
    shed: list[float] = []
    other: Counter[str] = Counter()
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one() -> None:
            start = time.perf_counter()
            try:
                async with http.post(
                    url + "/v1/chat/completions", json=body, timeout=aiohttp.ClientTimeout(total=30)
                ) as resp:
                    payload = await resp.read()
                    took = time.perf_counter() - start
                    if resp.status == 200:
                        admitted.append(took)
                    elif (
                        resp.status == 503
                        and "Retry-After" in resp.headers
                        and b'"error"' in payload
                    ):
                        shed.append(took)
                    else:
                        other[str(resp.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                other[type(exc).__name__] += 1

        tasks = []
        begin = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return {"admitted": admitted, "shed": shed, "other": other}


def quantiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    if len(values) < 2:
        return (values[0] * 1000 if values else 0.0, values[0] * 1000 if values else 0.0)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


async def scenario(
    scope: str, cap: int, delay: float, seconds: float, folder: pathlib.Path
) -> dict[str, Any]:
    sustainable = cap / delay
    async with slow_upstream(delay) as base_url:
        (folder / "endpoints.yaml").write_text(
            yaml.safe_dump(manifest(base_url, cap if scope == "endpoint" else 0))
        )
        extra = ["--max-in-flight", str(cap)] if scope == "gateway" else []
        gateway = stack.gateway(None, folder, config=folder, extra=extra)
        gateway.start()
        try:
            await asyncio.to_thread(gateway.wait_for, "/readyz")
            await drive(gateway.url, sustainable / 2, 1.0)  # warm-up, discarded
            result = await drive(gateway.url, 2 * sustainable, seconds)
        finally:
            gateway.stop()
    result.update(scope=scope, cap=cap, rate=2 * sustainable, sustainable=sustainable)
    return result


def report(results: list[dict[str, Any]], delay: float) -> str:
    lines = [
        f"Upstream answers after {delay * 1000:.0f} ms; sustainable rate = cap / delay; "
        "offered load = 2x sustainable, open loop.",
        "",
        "| cap scope | cap | offered req/s | sent | admitted | shed 503 + Retry-After | other |"
        " admitted p50 / p99 ms | shed p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        sent = len(r["admitted"]) + len(r["shed"]) + sum(r["other"].values())
        a50, a99 = quantiles(r["admitted"])
        s50, s99 = quantiles(r["shed"])
        lines.append(
            f"| {r['scope']} | {r['cap']} | {r['rate']:.0f} | {sent} | {len(r['admitted'])} | "
            f"{len(r['shed'])} | {dict(r['other']) or 0} | {a50:.1f} / {a99:.1f} | "
            f"{s50:.1f} / {s99:.1f} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> str:
    results = []
    for scope in ("gateway", "endpoint"):
        with tempfile.TemporaryDirectory(prefix="switchyard-overload-") as tmp:
            results.append(
                await scenario(scope, args.cap, args.delay, args.seconds, pathlib.Path(tmp))
            )
    return report(results, args.delay)


def main() -> None:
    """Entry point of `python -m bench.overload`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=16, help="in-flight cap")
    parser.add_argument("--delay", type=float, default=0.05, help="upstream latency, seconds")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured run length")
    print(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
