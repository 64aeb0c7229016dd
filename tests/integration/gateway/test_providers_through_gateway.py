"""Every provider adapter end to end: the `openai` SDK -> the gateway -> a provider's fake.

The adapters' translations are unit-tested from recorded payloads; this proves the whole
path (routing, attempt runner, translation, SSE relay) for each wire format, and a
cross-provider fallback: an Anthropic 529 answered by an OpenAI fallback.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from switchyard_testing.fakes import FakeOpenAI, Fault
from switchyard_testing.fakes.anthropic import FakeAnthropic
from switchyard_testing.fakes.gemini import FakeGemini
from tests.integration.gateway.kit import Gateway, endpoint, running_gateway

KEYS = {"ANTHROPIC_KEY": "sk-ant-test-1111", "GEMINI_KEY": "gm-test-2222",
        "OPENAI_KEY": "sk-oai-test-3333", "AZURE_KEY": "az-test-4444",
        "MISTRAL_KEY": "ms-test-5555"}
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
TOOLS: list[Any] = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def target(name: str, provider: str, base_url: str, env: str, weight: int | None = None,
           **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "provider": provider, "model": f"{name}-model",
                           "baseUrl": base_url, "apiKey": {"envVar": env}, **extra}
    if weight is not None:
        out["weight"] = weight
    return out


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, Any]]:
    async with (
        await FakeAnthropic.start(name="anthropic", expected_key=KEYS["ANTHROPIC_KEY"]) as a,
        await FakeGemini.start(name="gemini", expected_key=KEYS["GEMINI_KEY"]) as g,
        await FakeOpenAI.start(name="openai", expected_key=KEYS["OPENAI_KEY"]) as o,
        await FakeOpenAI.start(name="azure", expected_key=KEYS["AZURE_KEY"]) as az,
        await FakeOpenAI.start(name="mistral", expected_key=KEYS["MISTRAL_KEY"]) as m,
    ):
        yield {"anthropic": a, "gemini": g, "openai": o, "azure": az, "mistral": m}


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fakes: dict[str, Any]) -> AsyncIterator[Gateway]:
    a, g, o, az, m = (fakes[k] for k in ("anthropic", "gemini", "openai", "azure", "mistral"))
    docs = [
        endpoint("claude", [target("claude", "anthropic", a.base_url, "ANTHROPIC_KEY", 100)],
                 [target("gpt", "openai", o.base_url, "OPENAI_KEY")],
                 # Fallback conduct only; same-target retries are tests/conformance's.
                 policy={"retry": {"maxRetries": 0}}),
        endpoint("gemini", [target("gemini", "gemini", g.base_url, "GEMINI_KEY", 100)]),
        endpoint("azure", [target("azure", "azure-openai", az.url, "AZURE_KEY", 100,
                                  azure={"deployment": "dep1"})]),
        endpoint("mistral", [target("mistral", "mistral", m.base_url, "MISTRAL_KEY", 100)]),
    ]
    async with running_gateway(tmp_path / "cfg", docs, KEYS) as gw:
        yield gw


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="caller", max_retries=0)


@pytest.mark.parametrize("model", ["claude", "gemini", "azure", "mistral"])
async def test_chat_round_trip(gateway: Gateway, fakes: dict[str, Any], model: str) -> None:
    raw = await client(gateway).chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES)  # type: ignore[arg-type]
    completion = raw.parse()
    assert raw.headers["x-switchyard-target"] == model
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    sent = fakes[model if model != "claude" else "anthropic"].requests[-1]
    assert "caller" not in str(sent.headers.get("Authorization", ""))  # never forwarded


@pytest.mark.parametrize("model", ["claude", "gemini", "azure", "mistral"])
async def test_streaming_round_trip(gateway: Gateway, model: str) -> None:
    stream = await client(gateway).chat.completions.create(
        model=model, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    text, finish = "", None
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text and finish == "stop"


@pytest.mark.parametrize("model", ["claude", "gemini"])
async def test_tool_call_is_translated(gateway: Gateway, model: str) -> None:
    completion = await client(gateway).chat.completions.create(
        model=model, messages=MESSAGES, tools=TOOLS)  # type: ignore[arg-type]
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and choice.message.tool_calls[0].function.name == "get_weather"


async def test_anthropic_overloaded_falls_back_to_openai(
        gateway: Gateway, fakes: dict[str, Any]) -> None:
    fakes["anthropic"].script.push(Fault.OVERLOADED)
    raw = await client(gateway).chat.completions.with_raw_response.create(
        model="claude", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-switchyard-target"] == "gpt"
    assert raw.headers["x-switchyard-attempts"] == "2"


async def test_anthropic_stream_error_before_content_falls_back(
        gateway: Gateway, fakes: dict[str, Any]) -> None:
    fakes["anthropic"].script.push(Fault.IN_BAND_ERROR)
    stream = await client(gateway).chat.completions.create(
        model="claude", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert "openai" in text  # the fallback's fake says who answered
