"""A real gateway process against hostile upstreams (issue 15): each attack is stopped at
its limit, the fallback serves the request, `/healthz` answers within 100 ms throughout,
and the gateway's peak RSS stays under its idle peak plus the configured limits.

Before the limits, the same servers made the gateway accept 8 MiB of headers, buffer a
200 MB body (RSS 57 -> 262 MB), inflate a 305 KB gzip body to 300 MB (peak RSS 686 MB,
the event loop stalled 4.2 s) and grow one SSE line to 95 MB.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.integration.transport.siege import LIMITS, MIB, Result, siege

#: What the gateway may add to its idle peak: every configured limit, at once.
BUDGET_MIB = sum(LIMITS.values()) / MIB


def _held(result: Result, limit: str | tuple[str, ...]) -> None:
    names = (limit,) if isinstance(limit, str) else limit
    assert result.served_by == "fallback", result
    assert any(result.limit_metrics.get(name) for name in names), result
    assert result.healthz_max_ms < 100, result
    assert result.peak_hwm_mib < result.idle_hwm_mib + BUDGET_MIB, result


@pytest.mark.timeout(120)
async def test_200_mb_of_headers_stop_at_the_header_limit(tmp_path: pathlib.Path) -> None:
    result = await siege(tmp_path, "headers")
    _held(result, "headers")
    assert result.upstream_sent_mib < 16  # dropped early, not read to the end


@pytest.mark.timeout(120)
async def test_200_mb_body_stops_at_the_body_limit(tmp_path: pathlib.Path) -> None:
    result = await siege(tmp_path, "body")
    _held(result, "body")
    assert result.upstream_sent_mib < 32


@pytest.mark.timeout(180)
async def test_300_mb_gzip_bomb_is_never_inflated_whole(tmp_path: pathlib.Path) -> None:
    result = await siege(tmp_path, "gzip")
    _held(result, ("body", "decompressed"))


@pytest.mark.timeout(120)
async def test_endless_sse_line_stops_at_the_line_limit(tmp_path: pathlib.Path) -> None:
    result = await siege(tmp_path, "sse")
    _held(result, "sse_line")
    assert result.upstream_sent_mib < 32
