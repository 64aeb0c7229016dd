"""A request the chosen target cannot express goes to a candidate that can (issue 16).

On a 50/50 OpenAI/Anthropic split, `n=2` used to be a 400 on the Anthropic arm and a 200 on
the OpenAI arm: the same request got different answers by the draw. Now a target whose
provider cannot express a parameter is passed over before anything is sent (no attempt, no
cooldown), the next candidate that can serves, and only when none can is the answer a 400
naming the parameter and the targets. Real fakes, the official openai SDK as the caller.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from switchyard_testing.fakes.anthropic import FakeAnthropic
from switchyard_testing.fakes.openai import FakeOpenAI
from tests.integration.gateway.kit import Gateway, endpoint, running_gateway

KEYS = {"OPENAI_KEY": "sk-openai-unsupported-0001", "ANTHROPIC_KEY": "sk-ant-unsupported-0001"}
MESSAGES = [{"role": "user", "content": "hi"}]


def target(name: str, provider: str, base_url: str, env: str,
           weight: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "provider": provider, "model": f"{name}-model",
                           "baseUrl": base_url, "apiKey": {"envVar": env}}
    if weight is not None:
        out["weight"] = weight
    return out


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeAnthropic, FakeOpenAI]]:
    async with (
        await FakeAnthropic.start(name="anthropic", expected_key=KEYS["ANTHROPIC_KEY"]) as a,
        await FakeOpenAI.start(name="openai", expected_key=KEYS["OPENAI_KEY"]) as o,
    ):
        yield a, o


@pytest.fixture
async def gateway(tmp_path: pathlib.Path,
                  fakes: tuple[FakeAnthropic, FakeOpenAI]) -> AsyncIterator[Gateway]:
    a, o = fakes
    docs = [
        endpoint("ab", [target("claude", "anthropic", a.base_url, "ANTHROPIC_KEY", 50),
                        target("gpt", "openai", o.base_url, "OPENAI_KEY", 50)]),
        endpoint("claude-only", [target("claude", "anthropic", a.base_url, "ANTHROPIC_KEY",
                                        100)]),
    ]
    async with running_gateway(tmp_path / "cfg", docs, KEYS) as gw:
        yield gw


async def test_same_request_same_answer_on_either_arm(
    gateway: Gateway, fakes: tuple[FakeAnthropic, FakeOpenAI]
) -> None:
    anthropic, _ = fakes
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="caller",
                                  max_retries=0) as client:
        for _ in range(20):  # both arms drawn (seeded: the draw is the same every run)
            raw = await client.chat.completions.with_raw_response.create(
                model="ab", messages=MESSAGES, n=2)  # type: ignore[arg-type]
            assert raw.status_code == 200
            assert raw.headers["x-switchyard-target"] == "gpt"
            assert raw.headers["x-switchyard-attempts"] == "1"  # the skip sent nothing
    assert not anthropic.requests  # Anthropic was never sent what it cannot express


async def test_none_can_express_it_is_a_400_naming_parameter_and_targets(
    gateway: Gateway, fakes: tuple[FakeAnthropic, FakeOpenAI]
) -> None:
    anthropic, _ = fakes
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="caller",
                                  max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="claude-only", messages=MESSAGES, n=2)  # type: ignore[arg-type]
    error = info.value.response.json()["error"]
    assert error["code"] == "unsupported_parameter"
    assert "n > 1 is not supported by any target of this endpoint: claude (anthropic)" in (
        error["message"])
    assert info.value.response.headers["x-switchyard-attempts"] == "0"
    assert not anthropic.requests
