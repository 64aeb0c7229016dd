"""HTTP edges: 404/400/413 bodies, health, readiness, metrics, load shedding, reload."""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from switchyard_testing.fakes import Behaviour, FakeOpenAI, Fault
from tests.integration.gateway.kit import (
    Gateway,
    endpoint,
    openai_target,
    running_gateway,
    wait_for,
)

KEYS = {"P_KEY": "sk-edge-primary-5151", "F_KEY": "sk-edge-fallback-6262"}
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as f:
        yield f


def _doc(fake: FakeOpenAI, **policy: object) -> dict[str, object]:
    return endpoint("chat", [openai_target("primary", fake.base_url, "P_KEY", weight=100)],
                    policy=dict(policy) or None)


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fake: FakeOpenAI) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path / "cfg", [_doc(fake)], KEYS,
                               max_body_bytes=4096) as gw:
        yield gw


async def _post(gw: Gateway, path: str, data: bytes) -> tuple[int, Any, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
            gw.url + path, data=data, headers={"content-type": "application/json"}) as resp:
        return resp.status, resp.headers.copy(), await resp.json()


@pytest.mark.parametrize(("data", "status", "code"), [
    (b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404,
     "model_not_found"),
    (b'{"model": "chat", "messages": [', 400, "invalid_request"),
    (b'{"messages": []}', 400, "invalid_request"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}',
     413, "request_too_large"),
])
async def test_caller_errors(gateway: Gateway, data: bytes, status: int, code: str) -> None:
    got, headers, body = await _post(gateway, "/v1/chat/completions", data)
    assert got == status
    assert body["error"]["code"] == code
    assert set(body["error"]) >= {"message", "type", "code"}
    assert "Traceback" not in body["error"]["message"]
    assert headers["x-request-id"]


async def test_unknown_route_and_method_are_json(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(gateway.url + "/v2/nothing") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "not_found"
        async with http.get(gateway.url + "/v1/chat/completions") as resp:
            assert resp.status == 405
            assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_health_ready_drain_and_metrics(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(gateway.url + "/healthz") as resp:
            assert resp.status == 200
        async with http.get(gateway.url + "/readyz") as resp:
            assert resp.status == 200
        async with http.post(gateway.url + "/v1/chat/completions", json=CHAT) as resp:
            assert resp.status == 200
            assert resp.headers.get("Connection", "").lower() != "close"
        gateway.state.draining = True
        async with http.get(gateway.url + "/readyz") as resp:
            assert resp.status == 503
        async with http.post(gateway.url + "/v1/chat/completions", json=CHAT) as resp:
            assert resp.status == 200  # still served while draining
            # ...on a connection it closes: the client's next request opens a new one
            # (to a replica still serving) instead of racing the close of this one.
            assert resp.headers["Connection"].lower() == "close"
        async with http.get(gateway.admin_url + "/metrics") as resp:
            text = await resp.text()
    assert 'switchyard_requests_total{endpoint="default/chat",status="200",target="primary"} 2.0' \
        in text
    assert 'switchyard_attempts_total{endpoint="default/chat",outcome="ok",target="primary"}' \
        in text
    assert 'switchyard_tokens_total{endpoint="default/chat",kind="prompt",target="primary"}' \
        in text
    assert 'switchyard_endpoint_config_info{endpoint="default/chat",spec_hash="sha256:' in text
    assert "switchyard_request_duration_seconds_bucket" in text


async def test_access_log_is_one_json_line(gateway: Gateway,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchyard.access")
    async with aiohttp.ClientSession() as http, http.post(
            gateway.url + "/v1/chat/completions", json=CHAT,
            headers={"x-request-id": "log-1"}) as resp:
        assert resp.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "switchyard.access"]
    assert len(lines) == 1
    line = orjson.loads(lines[0])
    assert line["request_id"] == "log-1"
    assert line["endpoint"] == "default/chat" and line["target"] == "primary"
    assert line["status"] == 200 and line["attempts"][0]["outcome"] == "ok"
    assert line["prompt_tokens"] is not None


async def test_load_shedding(tmp_path: pathlib.Path, fake: FakeOpenAI) -> None:
    fake.script.push(Behaviour(Fault.HANG, hang_seconds=30))
    async with running_gateway(tmp_path / "cfg", [_doc(fake, maxInFlight=1)], KEYS) as gw, \
            aiohttp.ClientSession() as http:
        hanging = asyncio.create_task(http.post(gw.url + "/v1/chat/completions", json=CHAT))
        await wait_for(lambda: gw.state.in_flight == 1)
        async with http.post(gw.url + "/v1/chat/completions", json=CHAT) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            assert (await resp.json())["error"]["code"] == "overloaded"
        hanging.cancel()
        await asyncio.gather(hanging, return_exceptions=True)


async def test_reload_applies_good_edits_and_keeps_last_good(
        tmp_path: pathlib.Path, fake: FakeOpenAI) -> None:
    async with await FakeOpenAI.start(name="second", expected_key=KEYS["F_KEY"]) as second, \
            running_gateway(tmp_path / "cfg", [_doc(fake)], KEYS) as gw, \
            aiohttp.ClientSession() as http:
        gw.write(endpoint("chat", [openai_target("second", second.base_url, "F_KEY",
                                                 weight=100)]))
        assert await gw.reload()
        async with http.post(gw.url + "/v1/chat/completions", json=CHAT) as resp:
            assert resp.headers["x-switchyard-target"] == "second"
        bad = endpoint("chat", [openai_target("a", fake.base_url, "P_KEY", weight=60)])
        gw.write(bad)
        assert await gw.reload()
        async with http.post(gw.url + "/v1/chat/completions", json=CHAT) as resp:
            assert resp.status == 200
            assert resp.headers["x-switchyard-target"] == "second"
        async with http.get(gw.admin_url + "/metrics") as resp:
            text = await resp.text()
        assert 'switchyard_config_changes_total{endpoint="default/chat",kind="rejected"} 1.0' \
            in text
