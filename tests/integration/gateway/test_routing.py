"""Fallback order, cooldown, final failures and caller faults, through real HTTP."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from switchyard_testing.fakes import Behaviour, FakeOpenAI, Fault
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

KEYS = {"P_KEY": "sk-primary-aaaa1111", "F1_KEY": "sk-fallback1-bbbb2222",
        "F2_KEY": "sk-fallback2-cccc3333"}
MESSAGES = [{"role": "user", "content": "hi"}]


class Clock:
    """An injected clock for the breakers: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]]:
    async with (
        await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as p,
        await FakeOpenAI.start(name="fb1", expected_key=KEYS["F1_KEY"]) as f1,
        await FakeOpenAI.start(name="fb2", expected_key=KEYS["F2_KEY"]) as f2,
    ):
        yield p, f1, f2


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, ...],
                  clock: Clock) -> AsyncIterator[Gateway]:
    p, f1, f2 = fakes
    doc = endpoint(
        "chat",
        [openai_target("primary", p.base_url, "P_KEY", weight=100)],
        [openai_target("fb1", f1.base_url, "F1_KEY"), openai_target("fb2", f2.base_url, "F2_KEY")],
        policy={"cooldown": {"failureThreshold": 1, "seconds": 30}},
    )
    async with running_gateway(tmp_path / "cfg", [doc], KEYS, cooldown_clock=clock) as gw:
        yield gw


def _client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)


async def test_fallback_order_then_cooldown_skips_the_primary(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI],
        clock: Clock) -> None:
    p, f1, f2 = fakes
    p.script.push(Fault.UNAVAILABLE)
    f1.script.push(Behaviour(Fault.RATE_LIMIT, retry_after=5))
    raw = await _client(gateway).chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES, extra_headers={"x-request-id": "order-1"})
    assert raw.parse().choices[0].message.content == "Hello from fb2 (fb2)."
    assert raw.headers["x-switchyard-target"] == "fb2"
    assert raw.headers["x-switchyard-attempts"] == "3"
    order = [(f.name, r.headers["x-request-id"]) for f in (p, f1, f2) for r in f.requests]
    assert order == [("primary", "order-1"), ("fb1", "order-1"), ("fb2", "order-1")]

    # primary (503) and fb1 (Retry-After) now cool down: the next request goes straight
    # to fb2, with one attempt sent.
    raw = await _client(gateway).chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES)
    assert raw.headers["x-switchyard-attempts"] == "1"
    assert (len(p.requests), len(f1.requests), len(f2.requests)) == (1, 1, 2)

    # After the cooldown the primary gets one probe; its success closes the breaker.
    clock.now += 31
    raw = await _client(gateway).chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES)
    assert raw.headers["x-switchyard-target"] == "primary"
    assert len(p.requests) == 2


async def test_all_rate_limited_is_429_with_smallest_retry_after(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]) -> None:
    for fake, seconds in zip(fakes, (20, 7, 12), strict=True):
        fake.script.push(Behaviour(Fault.RATE_LIMIT, retry_after=seconds))
    async with aiohttp.ClientSession() as http, http.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "chat", "messages": MESSAGES}) as resp:
        body = await resp.json()
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "7"
        assert resp.headers["x-should-retry"] == "false"
        assert resp.headers["x-switchyard-attempts"] == "3"
    error = body["error"]
    assert error["type"] == "rate_limit_error"
    assert [(a["target"], a["outcome"], a["status"]) for a in error["attempts"]] == [
        ("primary", "rateLimit", 429), ("fb1", "rateLimit", 429), ("fb2", "rateLimit", 429)]
    assert all(a["sent"] and a["duration_ms"] >= 0 for a in error["attempts"])


async def test_mixed_failures_are_502_and_provider_401_never_reaches_the_caller(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]) -> None:
    p, f1, f2 = fakes
    p.script.push(Fault.UNAUTHORIZED)
    f1.script.push(Fault.RATE_LIMIT)
    f2.script.push(Fault.SERVER_ERROR)
    with pytest.raises(openai.APIStatusError) as info:
        await _client(gateway).chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.status_code == 502
    outcomes = [a["outcome"] for a in info.value.body["attempts"]]  # type: ignore[index]
    assert outcomes == ["providerAuth", "rateLimit", "serverError"]


async def test_caller_fault_is_passed_through_without_fallback(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]) -> None:
    p, f1, f2 = fakes
    p.script.push(Fault.BAD_REQUEST)
    with pytest.raises(openai.BadRequestError) as info:
        await _client(gateway).chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.response.headers["x-switchyard-attempts"] == "1"
    assert "messages" in info.value.message
    assert (len(f1.requests), len(f2.requests)) == (0, 0)


async def test_missing_credential_is_skipped_without_an_attempt(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]) -> None:
    p, f1, _ = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "UNSET_KEY", weight=100)],
                   [openai_target("fb1", f1.base_url, "F1_KEY")])
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        raw = await _client(gw).chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES)
    assert raw.headers["x-switchyard-target"] == "fb1"
    assert raw.headers["x-switchyard-attempts"] == "1"
    assert len(p.requests) == 0


async def test_fallback_on_is_honoured(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]) -> None:
    p, f1, _ = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)],
                   [openai_target("fb1", f1.base_url, "F1_KEY")],
                   policy={"fallbackOn": ["rateLimit"], "retry": {"maxRetries": 0}})
    p.script.push(Fault.SERVER_ERROR)
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        with pytest.raises(openai.APIStatusError) as info:
            await _client(gw).chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.status_code == 502
    assert len(f1.requests) == 0


async def test_timeout_falls_back_and_all_timeouts_are_504(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]) -> None:
    p, f1, _ = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)],
                   [openai_target("fb1", f1.base_url, "F1_KEY")],
                   policy={"attemptTimeoutSeconds": 1})
    p.script.push(Fault.HANG)
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        raw = await _client(gw).chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES)
        assert raw.headers["x-switchyard-target"] == "fb1"
        p.script.push(Fault.HANG)
        f1.script.push(Fault.HANG)
        with pytest.raises(openai.APIStatusError) as info:
            await _client(gw).chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.status_code == 504
    assert [a["outcome"] for a in info.value.body["attempts"]] == ["timeout", "timeout"]  # type: ignore[index]


async def test_connection_refused_falls_back(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]) -> None:
    _, f1, _ = fakes
    dead = await FakeOpenAI.start(name="dead")
    dead_url = dead.base_url
    await dead.close()
    doc = endpoint("chat", [openai_target("dead", dead_url, "P_KEY", weight=100)],
                   [openai_target("fb1", f1.base_url, "F1_KEY")])
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        raw = await _client(gw).chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES)
    assert raw.headers["x-switchyard-target"] == "fb1"
    # A refused connection is not retried on the same target (nothing reached it).
    assert raw.headers["x-switchyard-attempts"] == "2"


async def test_every_target_cooling_down_is_502_with_retry_after_and_no_attempt(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]) -> None:
    for fake in fakes:
        fake.script.push(Fault.UNAVAILABLE)
    async with aiohttp.ClientSession() as http:
        url = gateway.url + "/v1/chat/completions"
        body = {"model": "chat", "messages": MESSAGES}
        async with http.post(url, json=body) as resp:
            assert resp.status == 502, await resp.text()  # all three now cool down
        async with http.post(url, json=body) as resp:
            error = (await resp.json())["error"]
            assert resp.status == 502
            assert int(resp.headers["Retry-After"]) >= 1
            assert resp.headers["x-switchyard-attempts"] == "0"
    assert [(a["target"], a["outcome"], a["sent"]) for a in error["attempts"]] == [
        ("primary", "cooldown", False), ("fb1", "cooldown", False), ("fb2", "cooldown", False)]
    assert sum(len(f.requests) for f in fakes) == 3
