"""An origin at its connection limit, through the real gateway: the next request's
attempt fails within the capacity wait and the fallback serves it; with nothing left to
fall back on the answer is 503 with Retry-After, never a minute-long wait for a 504.
The refusal is visible in the metrics and does not cool the target down. A target's own
cap (`maxConcurrentRequests`) is refused the same way and its slots come back."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator

import openai
import prometheus_client
import pytest

from switchyard_testing.fakes import FakeOpenAI, Fault
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

KEYS = {"P_KEY": "sk-primary-aaaa1111", "F1_KEY": "sk-fallback1-bbbb2222"}
MESSAGES = [{"role": "user", "content": "hi"}]
#: The primary's hung request holds the origin's only connection this long at most.
ATTEMPT_TIMEOUT = 20


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI]]:
    async with (
        await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as p,
        await FakeOpenAI.start(name="fb1", expected_key=KEYS["F1_KEY"]) as f1,
    ):
        yield p, f1


def _client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)


async def _hold_the_only_connection(gw: Gateway, p: FakeOpenAI) -> asyncio.Task[object]:
    p.script.push(Fault.HANG)
    held = asyncio.ensure_future(_client(gw).chat.completions.create(
        model="chat", messages=MESSAGES))
    loop = asyncio.get_running_loop()
    end = loop.time() + 5.0
    while not p.requests:  # the hung request has reached the primary
        assert loop.time() < end, "the first request never reached the primary"
        await asyncio.sleep(0.01)
    return held


async def test_overflow_falls_back_within_the_capacity_wait(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    p, f1 = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)],
                   [openai_target("fb1", f1.base_url, "F1_KEY")],
                   policy={"attemptTimeoutSeconds": ATTEMPT_TIMEOUT,
                           "cooldown": {"failureThreshold": 1, "seconds": 30}})
    async with running_gateway(tmp_path / "cfg", [doc], KEYS,
                               upstream_max_connections_per_origin=1,
                               upstream_capacity_wait_seconds=0.1) as gw:
        held = await _hold_the_only_connection(gw, p)
        loop = asyncio.get_running_loop()
        for _ in range(2):  # the refusal does not cool the primary down: tried again
            start = loop.time()
            raw = await _client(gw).chat.completions.with_raw_response.create(
                model="chat", messages=MESSAGES)
            assert loop.time() - start < 2.0
            assert raw.headers["x-switchyard-target"] == "fb1"
            assert raw.headers["x-switchyard-attempts"] == "2"
        assert len(p.requests) == 1  # nothing was sent to the full origin
        # read from the app's registry: the same text /metrics serves, wherever it is served
        text = prometheus_client.generate_latest(gw.state.metrics.registry).decode()
        assert "switchyard_upstream_overloaded_total 2.0" in text
        assert "switchyard_upstream_queued 0.0" in text
        assert 'switchyard_upstream_queue_wait_seconds_count 2.0' in text
        held.cancel()


async def test_overflow_without_fallback_is_503_with_retry_after(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    p, _ = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)],
                   policy={"attemptTimeoutSeconds": ATTEMPT_TIMEOUT})
    async with running_gateway(tmp_path / "cfg", [doc], KEYS,
                               upstream_max_connections_per_origin=1,
                               upstream_capacity_wait_seconds=0.1) as gw:
        held = await _hold_the_only_connection(gw, p)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(openai.APIStatusError) as info:
            await _client(gw).chat.completions.create(model="chat", messages=MESSAGES,
                                                      stream=True)
        assert loop.time() - start < 2.0
        held.cancel()
    assert info.value.status_code == 503
    assert info.value.response.headers["retry-after"] == "1"
    body = info.value.body
    assert isinstance(body, dict)
    assert [a["outcome"] for a in body["attempts"]] == ["connectionError"]
    assert "became free within 100 ms" in body["attempts"][0]["message"]


async def test_target_cap_falls_back_and_frees_its_slot(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    p, f1 = fakes
    capped = openai_target("primary", p.base_url, "P_KEY", weight=100)
    capped["maxConcurrentRequests"] = 1
    doc = endpoint("chat", [capped], [openai_target("fb1", f1.base_url, "F1_KEY")],
                   policy={"attemptTimeoutSeconds": ATTEMPT_TIMEOUT})
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        held = await _hold_the_only_connection(gw, p)  # the primary's one slot
        loop = asyncio.get_running_loop()
        start = loop.time()
        raw = await _client(gw).chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES)
        assert loop.time() - start < 2.0
        assert raw.headers["x-switchyard-target"] == "fb1"
        assert len(p.requests) == 1  # the capped target was not sent the second request
        held.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await held
        await asyncio.sleep(0.1)  # the cancelled stream gives its slot back
        stream = await _client(gw).chat.completions.create(model="chat", messages=MESSAGES,
                                                           stream=True)
        chunks = [c async for c in stream]
        assert chunks and len(p.requests) == 2  # the primary serves again
        raw = await _client(gw).chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES)
        assert raw.headers["x-switchyard-target"] == "primary"  # the stream's slot is back


async def test_target_cap_without_fallback_is_503(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    p, _ = fakes
    capped = openai_target("primary", p.base_url, "P_KEY", weight=100)
    capped["maxConcurrentRequests"] = 1
    doc = endpoint("chat", [capped], policy={"attemptTimeoutSeconds": ATTEMPT_TIMEOUT})
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        held = await _hold_the_only_connection(gw, p)
        with pytest.raises(openai.APIStatusError) as info:
            await _client(gw).chat.completions.create(model="chat", messages=MESSAGES)
        held.cancel()
    assert info.value.status_code == 503
    assert info.value.response.headers["retry-after"] == "1"
    body = info.value.body
    assert isinstance(body, dict)
    assert "maxConcurrentRequests of 1" in body["attempts"][0]["message"]
