"""The benchmark harness's pure pieces work (the benchmark itself is not a test)."""

from __future__ import annotations

import pathlib

from bench import compare, report, tracing_off, upstream, wrk

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:1/v1/chat/completions
  1 threads and 32 connections
  Latency Distribution
     50%    4.10ms
     99%    1.20s
  41000 requests in 10.00s, 20.00MB read
  Non-2xx or 3xx responses: 7
Requests/sec:   4100.00
"""


def test_wrk_summary_is_parsed() -> None:
    result = wrk.parse(WRK_OUTPUT, 10.0)
    assert (result.requests, result.errors) == (41000, 7)
    assert result.p50_ms == 4.1 and result.p99_ms == 1200.0
    assert result.ok_per_second == (41000 - 7) / 10.0


def test_nginx_config_serves_each_port(tmp_path: pathlib.Path) -> None:
    ups = upstream.Upstream(json=(1, 2, 3), sse=(4, 5))
    text = upstream.write_config(tmp_path, ups).read_text()
    for port in (1, 2, 3, 4, 5):
        assert f"listen 127.0.0.1:{port} reuseport;" in text
    assert "text/event-stream" in text and "data: [DONE]" in text


def test_report_ratios_and_targets() -> None:
    def sample(name: str, rps: float, cpu: float | None, p50: float) -> compare.Sample:
        return compare.Sample(name, rps, 0, cpu, 5.0, None, {200: (p50, p50 * 2, 200.0)},
                              (p50, p50 * 2))
    samples = [sample("direct", 50000, None, 0.5), sample("naive", 4000, 250, 1.0),
               sample("switchyard", 3800, 270, 1.2), sample("naive", 4200, 230, 1.0)]
    rows = report.medians(samples)
    assert rows["naive"]["rps"] == 4100
    lines = "\n".join(report.table(rows, (200,)))
    assert "| switchyard | 3,800 | 0.93 |" in lines
    verdicts = "\n".join(report.targets(rows))
    assert "throughput >= 90% of the naive proxy | 93% | met" in verdicts
    assert "throughput >= 5x mlflow | n/a | not measured" in verdicts
    assert "tracing off: telemetry hooks < 2% of CPU/request | n/a | not measured" in verdicts
    with_hooks = "\n".join(report.targets(rows, 540.0))
    assert "tracing off: telemetry hooks < 2% of CPU/request | 0.200% | met" in with_hooks


def test_tracing_off_hooks_are_timed() -> None:
    hooks = tracing_off.hooks_ns(number=1000, repeat=3)
    assert 0 < hooks < 100_000
    lines = "\n".join(tracing_off.section(hooks, 250.0))
    assert "## Tracing off" in lines and "(target < 2%)" in lines
