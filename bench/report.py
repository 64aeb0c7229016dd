"""The markdown report: medians per system, ratios, targets, and docs/benchmarks.md.

Pure formatting over `compare.Sample`s and the extra sections' lines; `__main__` prints
the result and writes it to docs/benchmarks.md with the machine, versions and method.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from bench import compare, systems


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def medians(samples: Sequence[compare.Sample]) -> dict[str, dict[str, float | None]]:
    """Per system: median throughput, CPU/request, latencies and TTFB over the rounds."""
    out: dict[str, dict[str, float | None]] = {}
    for name in dict.fromkeys(s.system for s in samples):
        mine = [s for s in samples if s.system == name]
        row: dict[str, float | None] = {
            "rps": compare.median([s.rps for s in mine]),
            "cpu_us": compare.median([s.cpu_us for s in mine]),
            "nginx_cpu_us": compare.median([s.nginx_cpu_us for s in mine]),
            "rss_mb": compare.median([s.rss_mb for s in mine]),
            "errors": float(sum(s.errors for s in mine)),
            "ttfb_p50": compare.median([s.ttfb[0] if s.ttfb else None for s in mine]),
            "ttfb_p99": compare.median([s.ttfb[1] if s.ttfb else None for s in mine]),
        }
        for rate in sorted({r for s in mine for r in s.latency}):
            row[f"p50@{rate}"] = compare.median([s.latency[rate][0] if rate in s.latency
                                                 else None for s in mine])
            row[f"p99@{rate}"] = compare.median([s.latency[rate][1] if rate in s.latency
                                                 else None for s in mine])
        out[name] = row
    return out


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def table(rows: dict[str, dict[str, float | None]], rates: Sequence[int]) -> list[str]:
    """The main comparison table (markdown lines)."""
    naive = rows.get("naive", {})
    direct = rows.get("direct", {})
    head = ["system", "req/s (wrk -c32)", "x naive", "CPU us/req", "x naive CPU",
            "nginx CPU us/req"]
    for rate in rates:
        head += [f"p50/p99 ms @{rate}", f"overhead p50/p99 @{rate}"]
    head += ["stream TTFB p50/p99 ms", "TTFB overhead p50/p99"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        cells = [name, _fmt(row["rps"]), _fmt(_ratio(row["rps"], naive.get("rps")), 2),
                 _fmt(row["cpu_us"]), _fmt(_ratio(row["cpu_us"], naive.get("cpu_us")), 2),
                 _fmt(row["nginx_cpu_us"], 1)]
        for rate in rates:
            p50, p99 = row.get(f"p50@{rate}"), row.get(f"p99@{rate}")
            if p50 is None:
                cells += ["saturated", "-"]
                continue
            cells += [f"{_fmt(p50, 2)} / {_fmt(p99, 2)}",
                      f"{_fmt(_minus(p50, direct.get(f'p50@{rate}')), 2)} / "
                      f"{_fmt(_minus(p99, direct.get(f'p99@{rate}')), 2)}"]
        cells += [f"{_fmt(row['ttfb_p50'], 2)} / {_fmt(row['ttfb_p99'], 2)}",
                  f"{_fmt(_minus(row['ttfb_p50'], direct.get('ttfb_p50')), 2)} / "
                  f"{_fmt(_minus(row['ttfb_p99'], direct.get('ttfb_p99')), 2)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(rows: dict[str, dict[str, float | None]],
            hooks_ns: float | None = None) -> list[str]:
    """Each target of issues 8 and 20 with its measured figure and verdict; `hooks_ns`:
    what the telemetry hooks cost a request with tracing off (`tracing_off.py`)."""
    sy, naive = rows.get("switchyard", {}), rows.get("naive", {})
    out = ["| target | measured | verdict |", "|---|---|---|"]

    def line(what: str, value: float | None, ok: bool | None, fmt: str) -> None:
        verdict = "not measured" if ok is None else ("met" if ok else "missed")
        out.append(f"| {what} | {fmt.format(value) if value is not None else 'n/a'} | "
                   f"{verdict} |")

    thr = _ratio(sy.get("rps"), naive.get("rps"))
    line("throughput >= 90% of the naive proxy", thr, None if thr is None else thr >= 0.9,
         "{:.0%}")
    cpu = _ratio(sy.get("cpu_us"), naive.get("cpu_us"))
    line("CPU/request <= 1.15x the naive proxy", cpu, None if cpu is None else cpu <= 1.15,
         "{:.2f}x")
    two = _ratio(rows.get("switchyard-2w", {}).get("cpu_us"), sy.get("cpu_us"))
    line("CPU/request with --workers 2 within 10% of one worker", two,
         None if two is None else two <= 1.10, "{:.2f}x")
    cpu_us = sy.get("cpu_us")
    off = None if hooks_ns is None or not cpu_us else hooks_ns / (cpu_us * 1000.0)
    line("tracing off: telemetry hooks < 2% of CPU/request", off,
         None if off is None else off < 0.02, "{:.3%}")
    traced = _ratio(rows.get("switchyard-traced", {}).get("cpu_us"), sy.get("cpu_us"))
    out.append("| CPU/request with tracing on (every request sampled, OTLP batches) vs off | "
               f"{'n/a' if traced is None else f'{traced:.2f}x'} | "
               f"{'not measured' if traced is None else 'reported (no target)'} |")
    for peer, want in (("mlflow", 5.0), ("litellm", 20.0)):
        r = _ratio(sy.get("rps"), rows.get(peer, {}).get("rps"))
        line(f"throughput >= {want:g}x {peer}", r, None if r is None else r >= want,
             "{:.1f}x")
    for q, bound in (("p50", 0.3), ("p99", 1.0)):
        d = _minus(sy.get(f"{q}@200"), naive.get(f"{q}@200"))
        line(f"{q} at 200 req/s within {bound} ms of the naive proxy", d,
             None if d is None else d <= bound, "{:+.2f} ms")
    return out


def document(table_lines: Sequence[str], target_lines: Sequence[str],
             sections: Sequence[str], versions: dict[str, str], command: str,
             plan: compare.Plan) -> str:
    """docs/benchmarks.md."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    notes = "\n".join(f"- **{k}**: {v}" for k, v in systems.NOTES.items())
    vers = ", ".join(f"{k} {v}" for k, v in versions.items())
    return f"""# Benchmarks

Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores
({cpu}), Linux {platform.release()}, Python {platform.python_version()}; {vers}.

Reproduce (installs wrk and nginx from Debian and the peers into their own venvs):

```sh
{command}
```

## Method

- Upstream: nginx, one worker, answering every POST with a fixed OpenAI chat completion
  (or a fixed SSE stream) from memory; the `direct` row measures it alone.
- Pinning: each system on core 1 (`taskset -c 1`, one worker); wrk, the open-loop
  generator and nginx on core 0.
- Closed loop: wrk `-t1 -c{plan.connections}` for {plan.closed_seconds:g} s after a
  {plan.warmup:g} s warm-up that is discarded. CPU us/req = utime+stime of the system's
  process tree (/proc/<pid>/stat) over the run / successful requests.
- Open loop: requests due at a fixed rate ({', '.join(map(str, plan.rates))} req/s) for
  {plan.open_seconds:g} s after {plan.open_warmup:g} s of warm-up; latency from each
  request's due time (no coordinated omission); a rate above 90% of a system's closed-loop
  throughput is not run ("saturated"). Overhead = system minus direct at the same rate.
- Streaming: {plan.stream_rate} req/s open loop, time to the first body byte of an SSE
  answer; overhead = system minus nginx's SSE port direct.
- {plan.rounds} rounds, systems started fresh each round in the same order (alternating);
  the table shows medians. The machine is shared, so absolute numbers drift between runs;
  the ratios (same run, same cores) and the CPU per request are the figures to read.

Systems, each with the same 50/50 endpoint and a fallback:

{notes}

## Results

{chr(10).join(table_lines)}

## Targets (issues 8 and 20)

{chr(10).join(target_lines)}

{chr(10).join(sections)}
"""
