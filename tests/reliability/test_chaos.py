"""Chaos under load, the in-suite size: `bench/chaos.py` with 1,000 requests at 100/s.

Fakes inject every fault kind at random; the real gateway process routes with a refused
fallback and a healthy one. The bar: every request ends as a success or a well-formed
error (no truncated success, no unterminated stream, no hang, nothing lost), 100% success
for non-streaming requests with the healthy fallback, and no key value in the gateway's
log. The long run (20,000 requests) is `python -m bench.chaos`; see docs/reliability.md.
"""

from __future__ import annotations

import logging
import pathlib

import pytest
from bench import chaos

from switchyard_testing.fakes import Fault

pytestmark = pytest.mark.slow


async def test_chaos_under_load(tmp_path: pathlib.Path) -> None:
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    report = await chaos.run(1000, 100.0, seed=11, workdir=tmp_path)
    summary = report.summary()
    print(chaos.render_markdown(summary))
    assert report.violations == [], summary
    assert sum(report.outcomes.values()) == 1000
    ok, total = summary["nonstream_with_fallback_success"].split("/")
    assert ok == total and int(total) > 0
    assert set(report.faults) >= {f.value for f in chaos.FAULT_RATES}, report.faults
    assert report.attempts["refused:connectionError"] > 0
    # Failures reach callers only where no healthy fallback exists, and well-formed.
    assert any(k.startswith("json:chaos-bare:error_") for k in report.outcomes)
    assert any(k.endswith("stream_error_event") for k in report.outcomes)
    log = _gateway_logs(tmp_path)
    for key in chaos.KEYS.values():
        assert key not in log
    assert Fault.OK.value in report.faults


def _gateway_logs(folder: pathlib.Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.glob("gateway-*.log"))
