"""Failover figures: the primary refuses connections, the fallback (nginx) answers.

Three endpoints on one `switchyard gateway`: `healthy` (split target on nginx), and
`outage` / `outage-nocool` whose only split target is a closed port, with nginx as the
fallback; `outage` keeps the default cooldown (the breaker opens after 3 failures and the
split target is skipped without an attempt), `outage-nocool` disables it (every request
tries the dead port first). Added latency = open-loop p50/p99 minus `healthy`'s at the
same rate; req/s during the outage from a closed-loop wrk run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvloop
import yaml

from bench import openloop, procs, systems, wrk
from bench.upstream import Upstream


def _endpoint(name: str, primary: str, fallback: str, cooldown: bool) -> dict[str, object]:
    def target(tname: str, base: str) -> dict[str, object]:
        return {"name": tname, "provider": "openai", "model": tname, "baseUrl": base,
                "apiKey": {"envVar": "BENCH_KEY"}}
    spec: dict[str, object] = {"task": "chat",
                               "trafficSplit": [{**target("primary", primary), "weight": 100}],
                               "fallbacks": [target("fallback", fallback)]}
    if not cooldown:
        spec["policy"] = {"cooldown": {"enabled": False}}
    return {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def section(upstream: Upstream, folder: Path, quick: bool = False) -> list[str]:
    """The failover section of the report (markdown lines)."""
    print("[bench] failover", file=sys.stderr)
    dead = f"http://127.0.0.1:{procs.free_port()}/v1"  # nothing listens there
    good = upstream.base_url(upstream.json[0])
    docs = [_endpoint("healthy", good, good, True), _endpoint("outage", dead, good, True),
            _endpoint("outage-nocool", dead, good, False)]
    config = folder / "failover.yaml"
    config.write_text(yaml.safe_dump_all(docs))
    port = procs.free_port()
    argv = [sys.executable, "-m", "switchyard_cli.main", "gateway", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port)]
    child = procs.Child("failover", procs.pinned(procs.GATEWAY_CORE, argv), folder,
                        env={"BENCH_KEY": systems.KEY})
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    seconds = 3.0 if quick else 8.0
    rows = []
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/readyz", child)
        for name in ("healthy", "outage", "outage-nocool"):
            body = systems.chat_body(name)
            wrk.run(url, body, systems.HEADERS, seconds=2)
            closed = wrk.run(url, body, systems.HEADERS, seconds=seconds)
            run = uvloop.run(openloop.run(url, body, systems.HEADERS, rate=100,
                                          seconds=seconds, warmup=1))
            rows.append((name, closed.ok_per_second, closed.errors, run.percentile(50),
                         run.percentile(99)))
    finally:
        child.stop()
    base50, base99 = rows[0][3], rows[0][4]
    lines = ["## Failover", "",
             "Primary refuses connections (closed port), fallback healthy; open loop at "
             "100 req/s for latency, wrk -c32 for req/s.", "",
             "| endpoint | req/s (wrk -c32) | errors | p50 / p99 ms | added p50 / p99 ms |",
             "|---|---|---|---|---|"]
    labels = {"healthy": "healthy primary (baseline)",
              "outage": "primary down, cooldown on (default)",
              "outage-nocool": "primary down, cooldown off"}
    for name, rps, errors, p50, p99 in rows:
        lines.append(f"| {labels[name]} | {rps:,.0f} | {errors} | {p50:.2f} / {p99:.2f} | "
                     f"{p50 - base50:+.2f} / {p99 - base99:+.2f} |")
    return [*lines, ""]
