"""Honest rate-limit answers: every 429 carries Retry-After, and a request whose every
candidate is out because of rate limits (429 now, or cooling down from an earlier 429) is
a 429, naming the last target tried or skipped. Clients back off on 429 + Retry-After; a
502 during a quota exhaustion makes them retry at once and dashboards show 5xx."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import openai
import pytest

from switchyard_testing.fakes import Behaviour, FakeOpenAI, Fault
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway
from tests.integration.gateway.test_routing import KEYS, MESSAGES, Clock

COOLDOWN = {"failureThreshold": 1, "seconds": 30}


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI]]:
    async with (
        await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as p,
        await FakeOpenAI.start(name="fb1", expected_key=KEYS["F1_KEY"]) as f1,
    ):
        yield p, f1


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI]
                  ) -> AsyncIterator[tuple[Gateway, Clock]]:
    p, f1 = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)],
                   [openai_target("fb1", f1.base_url, "F1_KEY")],
                   policy={"cooldown": COOLDOWN})
    clock = Clock()
    async with running_gateway(tmp_path / "cfg", [doc], KEYS, cooldown_clock=clock) as gw:
        yield gw, clock


async def _fail(gw: Gateway) -> openai.APIStatusError:
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x",
                                  max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="chat", messages=MESSAGES)
    return info.value


async def test_every_target_cooling_down_after_rate_limits_is_429_not_502(
        gateway: tuple[Gateway, Clock], fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    gw, clock = gateway
    for fake in fakes:
        fake.script.push(Fault.RATE_LIMIT_BARE)
    first = await _fail(gw)  # both answer 429 (no Retry-After) and start cooling down
    clock.now += 10
    skipped = await _fail(gw)  # nothing is sent: both are still out on their 429s
    assert (first.status_code, skipped.status_code) == (429, 429)  # was (429, 502)
    assert first.response.headers["retry-after"] == "30"  # the first cooldown to end
    assert skipped.response.headers["retry-after"] == "20"
    assert skipped.response.headers["x-switchyard-target"] == "fb1"  # last one skipped
    assert skipped.response.headers["x-switchyard-attempts"] == "0"
    assert skipped.response.headers["x-should-retry"] == "false"
    body = skipped.body
    assert isinstance(body, dict)
    assert [(a["target"], a["outcome"], a["sent"]) for a in body["attempts"]] == [
        ("primary", "cooldown", False), ("fb1", "cooldown", False)]
    assert "rate limit" in body["attempts"][0]["message"]
    assert sum(len(f.requests) for f in fakes) == 2


async def test_rate_limited_now_and_cooling_down_from_an_earlier_429_is_429(
        gateway: tuple[Gateway, Clock], fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    gw, clock = gateway
    p, f1 = fakes
    p.script.push(Fault.RATE_LIMIT_BARE)
    async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x",
                                  max_retries=0) as client:
        await client.chat.completions.create(model="chat", messages=MESSAGES)  # fb1 serves
    clock.now += 5
    f1.script.push(Fault.RATE_LIMIT_BARE)
    error = await _fail(gw)  # primary skipped (its 429), fb1 answers 429 now
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "25"  # primary comes back first
    assert error.response.headers["x-switchyard-target"] == "fb1"
    assert error.response.headers["x-switchyard-attempts"] == "1"


async def test_the_providers_retry_after_wins(
        gateway: tuple[Gateway, Clock], fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    gw, _ = gateway
    p, f1 = fakes
    p.script.push(Behaviour(Fault.RATE_LIMIT, retry_after=7))
    f1.script.push(Behaviour(Fault.RATE_LIMIT, retry_after=4))
    error = await _fail(gw)
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "4"


async def test_out_for_other_reasons_stays_502(
        gateway: tuple[Gateway, Clock], fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    gw, _ = gateway
    p, f1 = fakes
    p.script.push(Fault.UNAVAILABLE)
    f1.script.push(Fault.RATE_LIMIT_BARE)
    assert (await _fail(gw)).status_code == 502
    # Both are out now, primary after a 503 and fb1 after a 429: not all on rate limits.
    error = await _fail(gw)
    assert error.status_code == 502
    assert error.response.headers["x-switchyard-target"] == "fb1"


async def test_a_bare_429_without_cooldown_gets_the_default_retry_after(
        tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    p, _ = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)],
                   policy={"cooldown": {"enabled": False}, "retry": {"maxRetries": 0}})
    p.script.push(Fault.RATE_LIMIT_BARE)
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        error = await _fail(gw)
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "1"
    assert error.response.headers["x-switchyard-target"] == "primary"
