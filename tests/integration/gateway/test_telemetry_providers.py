"""Attempt spans of every provider family, streamed and not: usage, finish reasons, model.

The `openai` SDK -> the gateway (tracing on, in-memory exporter) -> each provider's fake.
A streamed answer's span must carry what the stream said (the provider's own usage
block, its finish reasons, the model it named) exactly as the whole answer's span does,
and both must equal what the fake reported to the caller.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import SpanKind

from switchyard_gateway.telemetry import Telemetry
from switchyard_testing.fakes import FakeMistral, FakeOpenAI
from switchyard_testing.fakes.anthropic import FakeAnthropic
from switchyard_testing.fakes.gemini import FakeGemini
from tests.integration.gateway.kit import Gateway, endpoint, running_gateway

KEYS = {"ANTHROPIC_KEY": "sk-ant-otel-1111", "GEMINI_KEY": "gm-otel-2222",
        "OPENAI_KEY": "sk-oai-otel-3333", "AZURE_KEY": "az-otel-4444",
        "MISTRAL_KEY": "ms-otel-5555"}
MESSAGES = [{"role": "user", "content": "hi there"}]
TOOLS: list[Any] = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
#: endpoint -> (gen_ai.provider.name, the fake's fixture key)
FAMILIES = {"claude": ("anthropic", "anthropic"), "gemini": ("gcp.gemini", "gemini"),
            "gpt": ("openai", "openai"), "azure": ("azure.ai.openai", "azure"),
            "mistral": ("mistral_ai", "mistral")}


def _target(name: str, provider: str, base_url: str, env: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": provider, "model": f"{name}-model", "baseUrl": base_url,
            "apiKey": {"envVar": env}, "weight": 100, **extra}


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, Any]]:
    async with (
        await FakeAnthropic.start(name="anthropic", expected_key=KEYS["ANTHROPIC_KEY"]) as a,
        await FakeGemini.start(name="gemini", expected_key=KEYS["GEMINI_KEY"]) as g,
        await FakeOpenAI.start(name="openai", expected_key=KEYS["OPENAI_KEY"]) as o,
        await FakeOpenAI.start(name="azure", expected_key=KEYS["AZURE_KEY"]) as az,
        await FakeMistral.start(name="mistral", expected_key=KEYS["MISTRAL_KEY"]) as m,
    ):
        yield {"anthropic": a, "gemini": g, "openai": o, "azure": az, "mistral": m}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fakes: dict[str, Any],
                  exporter: InMemorySpanExporter) -> AsyncIterator[Gateway]:
    docs = [
        endpoint("claude", [_target("claude", "anthropic", fakes["anthropic"].base_url,
                                    "ANTHROPIC_KEY")]),
        endpoint("gemini", [_target("gemini", "gemini", fakes["gemini"].base_url,
                                    "GEMINI_KEY")]),
        endpoint("gpt", [_target("gpt", "openai", fakes["openai"].base_url, "OPENAI_KEY")]),
        endpoint("azure", [_target("azure", "azure-openai", fakes["azure"].url, "AZURE_KEY",
                                   azure={"deployment": "azure-model"})]),
        endpoint("mistral", [_target("mistral", "mistral", fakes["mistral"].base_url,
                                     "MISTRAL_KEY")]),
    ]
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running_gateway(tmp_path / "cfg", docs, KEYS,
                               telemetry=Telemetry(provider)) as gw:
        yield gw


def _client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="caller", max_retries=0)


def _attempt(exporter: InMemorySpanExporter) -> dict[str, Any]:
    """The one attempt span of the one request traced since the last clear."""
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    assert [s.kind for s in spans].count(SpanKind.SERVER) == 1
    [attempt] = [s for s in spans if s.kind is SpanKind.CLIENT]
    exporter.clear()
    return dict(attempt.attributes or {})


async def _streamed(client: openai.AsyncOpenAI, model: str,
                    **extra: Any) -> tuple[tuple[int, int] | None, list[str]]:
    stream = await client.chat.completions.create(
        model=model, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}, **extra)
    usage, reasons = None, []
    async for chunk in stream:
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        reasons += [c.finish_reason for c in chunk.choices if c.finish_reason]
    return usage, reasons


@pytest.mark.parametrize("model", list(FAMILIES))
async def test_streamed_and_whole_answers_give_the_same_attempt_span(
        gateway: Gateway, exporter: InMemorySpanExporter, model: str) -> None:
    client = _client(gateway)
    whole = await client.chat.completions.create(
        model=model, messages=MESSAGES)  # type: ignore[arg-type]
    plain = _attempt(exporter)
    usage, reasons = await _streamed(client, model)
    streamed = _attempt(exporter)

    assert whole.usage is not None
    reported = (whole.usage.prompt_tokens, whole.usage.completion_tokens)
    assert usage == reported  # the caller saw the same usage both ways
    for span in (plain, streamed):
        assert span[gen_ai.GEN_AI_PROVIDER_NAME] == FAMILIES[model][0]
        assert (span[gen_ai.GEN_AI_USAGE_INPUT_TOKENS],
                span[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS]) == reported
        assert span[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
        assert span[gen_ai.GEN_AI_RESPONSE_MODEL] == whole.model
    assert reasons == ["stop"]
    if model in ("claude", "gemini"):  # the fakes report 7 output tokens
        assert reported[1] == 7


@pytest.mark.parametrize("model", ["claude", "gemini", "gpt"])
async def test_streamed_tool_call_finish_reason_is_on_the_span(
        gateway: Gateway, exporter: InMemorySpanExporter, model: str) -> None:
    _, reasons = await _streamed(_client(gateway), model, tools=TOOLS)
    assert reasons == ["tool_calls"]
    assert _attempt(exporter)[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)


async def test_stream_response_model_is_the_one_the_provider_named(
        gateway: Gateway, fakes: dict[str, Any], exporter: InMemorySpanExporter) -> None:
    """The fakes answer with the model they were asked for; the Gemini adapter puts the
    model in the URL, so its fake names exactly what the upstream path said."""
    await _streamed(_client(gateway), "gemini")
    span = _attempt(exporter)
    assert span[gen_ai.GEN_AI_REQUEST_MODEL] == "gemini-model"
    assert span[gen_ai.GEN_AI_RESPONSE_MODEL] == fakes["gemini"].requests[-1].model


async def test_a_provider_cannot_flood_the_span_with_finish_reasons(
        tmp_path: pathlib.Path) -> None:
    """A hostile upstream answers with 1,000 choices whose finish reasons are 1 KB each
    and a 10 KB model, whole and streamed (under the SSE line limit): the attempt span
    keeps 16 reasons of at most 100 characters and a model of at most 100."""
    huge = "r" * 1_000
    choices = [{"index": i, "message": {"role": "assistant", "content": "x"},
                "finish_reason": huge} for i in range(1000)]
    whole = {"id": "c", "object": "chat.completion", "created": 1, "model": "m" * 10_000,
             "choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m" * 10_000}
    frames = [{**head, "choices": [{"index": i, "delta": {"role": "assistant"}}
                                   for i in range(1000)]},
              {**head, "choices": [{"index": 0, "delta": {"content": "x"}}]},
              {**head, "choices": [{"index": i, "delta": {}, "finish_reason": huge}
                                   for i in range(1000)]}]

    async def answer(request: web.Request) -> web.StreamResponse:
        if not (await request.json()).get("stream"):
            return web.json_response(whole)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for frame in frames:
            await response.write(b"data: " + json.dumps(frame).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        docs = [endpoint("chat", [_target("hostile", "openai", url, "OPENAI_KEY")])]
        async with running_gateway(tmp_path / "cfg", docs, KEYS,
                                   telemetry=Telemetry(provider)) as gw:
            client = _client(gw)
            await client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
            spans = [_attempt(exporter)]
            stream = await client.chat.completions.create(
                model="chat", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            async for _ in stream:
                pass
            spans.append(_attempt(exporter))
    finally:
        await runner.cleanup()
    for span in spans:
        reasons = span[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS]
        assert len(reasons) == 16 and all(len(r) == 100 for r in reasons)
        assert len(span[gen_ai.GEN_AI_RESPONSE_MODEL]) == 100
