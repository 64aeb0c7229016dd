"""The gateway's status page: `/ui/status.json` contents, and `/ui` rendered in headless Chromium.

A real gateway app on loopback over fake OpenAI servers, driven with the `openai` SDK: a
70/30 split, then the primary made to fail so a fallback serves. The JSON must report
the targets in routing order with their weights, the requests each served, the fallbacks
taken and the config version. Chromium (Debian's `chromium`) loads `/ui`, runs its script
against the live JSON, and the test checks the DOM it produced and keeps a screenshot
(`artifacts/ui-status.png`, gitignored). Without chromium the browser test skips, except
under CI, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from switchyard_cli.main import main as switchyard
from switchyard_gateway.http import ui
from switchyard_testing.fakes import FakeOpenAI, Fault
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEYS = {"A_KEY": "sk-ui-a-1111", "B_KEY": "sk-ui-b-2222", "F_KEY": "sk-ui-f-3333"}
MESSAGES = [{"role": "user", "content": "hi"}]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage", "--hide-scrollbars")


@pytest.fixture
async def gateway(tmp_path: pathlib.Path) -> AsyncIterator[tuple[Gateway, FakeOpenAI]]:
    async with (
        await FakeOpenAI.start(name="a", expected_key=KEYS["A_KEY"]) as a,
        await FakeOpenAI.start(name="b", expected_key=KEYS["B_KEY"]) as b,
        await FakeOpenAI.start(name="f", expected_key=KEYS["F_KEY"]) as f,
    ):
        doc = endpoint(
            "chat",
            [openai_target("gpt5", a.base_url, "A_KEY", weight=70),
             openai_target("claude", b.base_url, "B_KEY", weight=30)],
            [openai_target("mini", f.base_url, "F_KEY")],
        )
        async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
            yield gw, a


async def _drive(gw: Gateway, n: int) -> None:
    client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    for _ in range(n):
        await client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    await client.close()


async def _status(gw: Gateway) -> dict[str, object]:
    async with aiohttp.ClientSession() as http, http.get(gw.admin_url + "/ui/status.json") as reply:
        assert reply.status == 200
        body: dict[str, object] = await reply.json()
        return body


async def test_status_json_reports_split_shares_fallbacks_and_version(
        gateway: tuple[Gateway, FakeOpenAI]) -> None:
    gw, primary = gateway
    await _drive(gw, 200)
    primary.script.set_rates({Fault.UNAVAILABLE: 1.0})
    await _drive(gw, 40)

    status = await _status(gw)
    assert status["ready"] is True
    [ep] = status["endpoints"]  # type: ignore[misc]
    assert ep["key"] == "default/chat" and ep["task"] == "chat"
    assert ep["spec_hash"] and ep["generation"] >= 0 and ep["age_seconds"] >= 0
    names = [(t["name"], t["role"], t["position"], t["weight"]) for t in ep["targets"]]
    assert names == [("gpt5", "split", 1, 70), ("claude", "split", 2, 30),
                     ("mini", "fallback", 1, None)]
    served = {t["name"]: t["served_window"] for t in ep["targets"]}
    assert sum(served.values()) == 240 == ep["requests_window"]
    assert ep["errors_window"] == 0
    # The 200 healthy requests split about 70/30; afterwards gpt5's share went to "mini".
    assert 100 < served["gpt5"] < 180, served
    assert served["mini"] > 10 and served["mini"] == ep["fallbacks_window"]
    assert abs(sum(t["share"] for t in ep["targets"]) - 1.0) < 1e-3
    assert ep["latency"]["p50_ms"] is not None and ep["requests_per_second"] > 0


async def test_switchyard_status_prints_the_same_table(
        gateway: tuple[Gateway, FakeOpenAI], capsys: pytest.CaptureFixture[str]) -> None:
    gw, _ = gateway
    await _drive(gw, 50)
    code = await asyncio.to_thread(switchyard, ["status", "--gateway", gw.admin_url])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("gateway ready, 1 endpoint(s)")
    assert any(line.startswith("default/chat  (chat)  config ") for line in lines)
    rows = {line.split()[0]: line.split() for line in lines if line.startswith("  ")}
    assert rows["gpt5"][1:4] == ["split", "1", "70%"]
    assert rows["mini"][1:4] == ["fallback", "1", "-"]
    assert int(rows["gpt5"][5]) + int(rows["claude"][5]) == 50

    code = await asyncio.to_thread(switchyard, ["status", "--gateway", "http://127.0.0.1:9"])
    assert code == 1 and "cannot read the status" in capsys.readouterr().err


def test_quantile_matches_prometheus_interpolation() -> None:
    buckets = {0.1: 50.0, 0.2: 100.0, float("inf"): 100.0}
    assert ui.quantile(0.5, buckets) == pytest.approx(0.1)
    assert ui.quantile(0.75, buckets) == pytest.approx(0.15)
    assert ui.quantile(0.5, {0.1: 0.0, float("inf"): 0.0}) is None


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("CI: chromium is required for the status page test (apt-get install chromium)")
    pytest.skip("chromium not installed (apt-get install -y chromium) - status page not rendered")


async def _chromium_run(binary: str, profile: pathlib.Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=4000",
        "--window-size=1200,640", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}"
    return out.decode(errors="replace")


async def test_status_page_renders_in_headless_chromium(
        gateway: tuple[Gateway, FakeOpenAI], tmp_path: pathlib.Path) -> None:
    binary = _chromium()
    gw, _ = gateway
    await _drive(gw, 60)
    url = gw.admin_url + "/ui"

    dom = await _chromium_run(binary, tmp_path / "profile", "--dump-dom", url)
    assert 'data-loaded="true"' in dom, dom[-2000:]
    assert 'data-endpoint="default/chat"' in dom
    for target in ("gpt5", "claude", "mini"):
        assert f'data-target="{target}"' in dom
    assert "70%" in dom and "30%" in dom and "fallback 1" in dom
    assert '<span class="meta" id="meta">ready · 1 endpoint(s)' in dom

    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "ui-status.png"
    shot.unlink(missing_ok=True)
    await _chromium_run(binary, tmp_path / "profile", f"--screenshot={shot}", url)
    assert shot.is_file() and shot.stat().st_size > 5_000
