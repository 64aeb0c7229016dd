"""OpenTelemetry spans, GenAI token metrics and cost, through the real gateway and fakes.

Spans go to the SDK's in-memory exporter (a `SimpleSpanProcessor`, so each is there as
soon as it ends); attribute names are the pinned `opentelemetry-semantic-conventions`
constants, so a rename in a new semconv version fails here.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind

from switchyard_gateway import genai_metrics, telemetry
from switchyard_gateway.http.tracing import tracing_middleware
from switchyard_gateway.pricing import PriceTable
from switchyard_gateway.telemetry import Telemetry
from switchyard_testing.fakes import FakeOpenAI, Fault
from tests.integration.gateway.kit import (
    Gateway,
    endpoint,
    openai_target,
    running_gateway,
    wait_for,
)

KEYS = {"P_KEY": "sk-primary-aaaa1111", "F1_KEY": "sk-fallback1-bbbb2222"}
MESSAGES = [{"role": "user", "content": "the secret prompt"}]
PRICES = {"model-b": {"input": 2.0, "output": 8.0}}
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_PARENT = "b7ad6b7169203331"


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI]]:
    async with (
        await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as p,
        await FakeOpenAI.start(name="fb1", expected_key=KEYS["F1_KEY"]) as f1,
    ):
        yield p, f1


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fakes: tuple[FakeOpenAI, FakeOpenAI],
                  exporter: InMemorySpanExporter) -> AsyncIterator[Gateway]:
    p, f1 = fakes
    doc = endpoint(
        "chat", [openai_target("primary", p.base_url, "P_KEY", model="model-a", weight=100)],
        [openai_target("fb1", f1.base_url, "F1_KEY", model="model-b")],
        policy={"cooldown": {"failureThreshold": 1, "seconds": 30}})
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES))
    async with running_gateway(tmp_path / "cfg", [doc], KEYS, telemetry=Telemetry(provider),
                               prices_file=str(prices)) as gw:
        yield gw


def _client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)


def _spans(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(servers) == 1
    clients = sorted((s for s in spans if s.kind is SpanKind.CLIENT),
                     key=lambda s: (s.attributes or {})["switchyard.attempt"])
    return servers[0], clients


async def _metric(gw: Gateway, prefix: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as s, s.get(gw.admin_url + "/metrics") as r:
        text = await r.text()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith(prefix)}


async def test_fallback_is_one_server_span_with_two_attempt_spans(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI],
        exporter: InMemorySpanExporter) -> None:
    p, f1 = fakes
    p.script.push(Fault.UNAVAILABLE)
    raw = await _client(gateway).chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES,
        extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_PARENT}-01"})
    usage = raw.parse().usage
    assert usage is not None
    server, (first, second) = _spans(exporter)

    # The caller's trace is continued; the attempts are children of the server span.
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CALLER_PARENT
    assert first.parent is not None and first.parent.span_id == server.context.span_id
    assert second.parent is not None and second.parent.span_id == server.context.span_id
    assert (server.attributes or {})["http.response.status_code"] == 200
    assert server.name == "POST /v1/chat/completions"
    assert (server.attributes or {})["http.route"] == "/v1/chat/completions"

    a, b = first.attributes or {}, second.attributes or {}
    assert a[gen_ai.GEN_AI_OPERATION_NAME] == "chat"
    assert a[gen_ai.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[gen_ai.GEN_AI_REQUEST_MODEL] == "model-a"
    assert (a["switchyard.endpoint"], a["switchyard.target"], a["switchyard.attempt"]) == (
        "default/chat", "primary", 1)
    assert a[error_attributes.ERROR_TYPE] == "serverError"
    assert a["http.response.status_code"] == 503
    assert gen_ai.GEN_AI_USAGE_INPUT_TOKENS not in a  # a failed attempt reported no usage
    assert "switchyard.cost.usd" not in a

    assert (b["switchyard.target"], b["switchyard.attempt"]) == ("fb1", 2)
    assert b[gen_ai.GEN_AI_REQUEST_MODEL] == b[gen_ai.GEN_AI_RESPONSE_MODEL] == "model-b"
    assert error_attributes.ERROR_TYPE not in b
    assert b[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert b[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert b[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.completion_tokens
    expected_cost = (usage.prompt_tokens * 2.0 + usage.completion_tokens * 8.0) / 1e6
    assert b["switchyard.cost.usd"] == pytest.approx(expected_cost)

    # Each attempt went upstream with its own span as the parent.
    for fake, span in ((p, first), (f1, second)):
        sent = fake.requests[-1].headers["traceparent"]
        assert sent == f"00-{CALLER_TRACE}-{span.context.span_id:016x}-01"

    # Prompt content is never recorded.
    for span in (server, first, second):
        assert "secret" not in json.dumps(dict(span.attributes or {}))
        assert not span.events

    metrics = await _metric(gateway, "switchyard_cost_usd_total")
    assert metrics == {'switchyard_cost_usd_total{caller_namespace="-",endpoint="default/chat",'
                       'model="model-b",target="fb1"}': pytest.approx(expected_cost)}


async def test_cooldown_skip_is_a_zero_length_attempt_span(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI],
        exporter: InMemorySpanExporter) -> None:
    p, _ = fakes
    p.script.push(Fault.UNAVAILABLE)
    await _client(gateway).chat.completions.create(model="chat", messages=MESSAGES)
    exporter.clear()
    await _client(gateway).chat.completions.create(model="chat", messages=MESSAGES)
    _, (skip, served) = _spans(exporter)
    attrs = skip.attributes or {}
    assert attrs["switchyard.skipped"] is True
    assert attrs["switchyard.target"] == "primary"
    assert attrs[error_attributes.ERROR_TYPE] == "cooldown"
    assert skip.start_time is not None and skip.end_time is not None
    assert skip.end_time - skip.start_time < 5_000_000  # made and ended at once
    assert (served.attributes or {})["switchyard.target"] == "fb1"
    assert len(p.requests) == 1


async def test_streamed_and_plain_usage_agree_with_the_fake(
        gateway: Gateway, exporter: InMemorySpanExporter) -> None:
    client = _client(gateway)
    plain = await client.chat.completions.create(model="chat", messages=MESSAGES)
    _, (plain_span,) = _spans(exporter)
    exporter.clear()
    stream = await client.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True})
    streamed = None
    async for chunk in stream:
        streamed = chunk.usage or streamed
    _, (stream_span,) = _spans(exporter)
    assert plain.usage is not None and streamed is not None
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (
        streamed.prompt_tokens, streamed.completion_tokens)
    for span, usage in ((plain_span, plain.usage), (stream_span, streamed)):
        attrs = span.attributes or {}
        assert attrs[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] == usage.prompt_tokens
        assert attrs[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.completion_tokens

    metrics = await _metric(gateway, "gen_ai_client_token_usage_sum")
    labels = ('caller_namespace="-",endpoint="default/chat",model="model-a",'
              'target="primary",token_type=')
    assert metrics == {
        f'gen_ai_client_token_usage_sum{{{labels}"input"}}': 2 * plain.usage.prompt_tokens,
        f'gen_ai_client_token_usage_sum{{{labels}"output"}}': 2 * plain.usage.completion_tokens}
    # model-a has no price: no cost is counted (never a guessed one).
    assert await _metric(gateway, "switchyard_cost_usd_total") == {}


async def test_stream_without_include_usage_counts_no_tokens(
        gateway: Gateway, exporter: InMemorySpanExporter) -> None:
    stream = await _client(gateway).chat.completions.create(
        model="chat", messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    _, (span,) = _spans(exporter)
    assert gen_ai.GEN_AI_USAGE_INPUT_TOKENS not in (span.attributes or {})
    counts = await _metric(gateway, "gen_ai_client_token_usage_count")
    assert all(value == 0 for value in counts.values())  # series may exist, with no sample


async def test_message_content_is_never_recorded_even_when_capture_is_asked(
        gateway: Gateway, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Content capture is not offered: the GenAI instrumentations' opt-in is refused with a
    warning, and no span (server, attempt; whole or streamed) carries the prompt, the
    completion, a key or the caller's Authorization, as attribute or event."""
    monkeypatch.setenv(telemetry.CAPTURE_CONTENT, "true")
    found = telemetry.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                telemetry.CAPTURE_CONTENT: "true"})
    assert found is not None
    found.shutdown()
    assert telemetry.CAPTURE_CONTENT in caplog.text and "never records" in caplog.text

    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="caller-secret-key",
                                max_retries=0)
    whole = await client.chat.completions.create(model="chat", messages=MESSAGES)
    stream = await client.chat.completions.create(model="chat", messages=MESSAGES,
                                                  stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream
                        if c.choices])
    reply = whole.choices[0].message.content
    assert reply and streamed == reply
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    for span in spans:
        assert not span.events
        recorded = json.dumps(dict(span.attributes or {}))
        for secret in ("the secret prompt", reply, "caller-secret-key", *KEYS.values()):
            assert secret not in recorded


def test_price_table_cost() -> None:
    from switchyard_gateway.providers.base import Usage

    table = PriceTable.parse(json.dumps(PRICES).encode())
    assert table.cost("model-b", Usage(1_000_000, 500_000)) == pytest.approx(6.0)
    assert table.cost("unpriced", Usage(10, 10)) is None


async def test_probes_are_not_traced(gateway: Gateway, exporter: InMemorySpanExporter) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/healthz", "/readyz"):
            async with s.get(gateway.url + path) as r:
                assert r.status == 200
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("env", [
    {},
    {"OTEL_SERVICE_NAME": "x"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "TRUE"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
    {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318/v1/metrics"},
])
def test_tracing_is_off_without_an_endpoint_or_when_disabled(env: dict[str, str]) -> None:
    assert telemetry.from_env(env) is None


@pytest.mark.parametrize("env", [
    {},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_METRICS_EXPORTER": "none"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
     "OTEL_METRICS_EXPORTER": "prometheus"},
])
def test_otlp_metrics_are_off_unless_asked(env: dict[str, str]) -> None:
    assert genai_metrics.from_env(env) is None


def test_otlp_metrics_are_on_with_either_endpoint_variable() -> None:
    for name, url in (("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
                      ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://127.0.0.1:9/v1/metrics")):
        found = genai_metrics.from_env({name: url, "OTEL_METRIC_EXPORT_TIMEOUT": "100"})
        assert found is not None
        attributes = found.provider._sdk_config.resource.attributes
        assert attributes["service.name"] == "switchyard-gateway"
        assert attributes["service.instance.id"]
        found.shutdown()


def test_tracing_is_on_with_either_endpoint_variable() -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        found = telemetry.from_env({name: "http://127.0.0.1:4318"})
        assert found is not None
        assert found.provider.resource.attributes["service.name"] == "switchyard-gateway"
        found.shutdown()


async def test_tracing_off_makes_no_spans(tmp_path: pathlib.Path,
                                          fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    p, _ = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)])
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        assert gw.app.middlewares[0] is tracing_middleware  # the plain one: no span code
        assert gw.state.meters is None
        await _client(gw).chat.completions.create(model="chat", messages=MESSAGES)
    assert "traceparent" not in p.requests[-1].headers


async def test_status_page_shows_tokens_and_cost_per_target(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    p, _ = fakes
    p.script.push(Fault.UNAVAILABLE)
    reply = await _client(gateway).chat.completions.create(model="chat", messages=MESSAGES)
    assert reply.usage is not None
    async with aiohttp.ClientSession() as s, s.get(gateway.admin_url + "/ui/status.json") as r:
        status = await r.json()
    targets = {t["name"]: t for t in status["endpoints"][0]["targets"]}
    fb1, primary = targets["fb1"], targets["primary"]
    assert (fb1["input_tokens_total"], fb1["output_tokens_total"]) == (
        reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert fb1["cost_usd_total"] == pytest.approx(
        (reply.usage.prompt_tokens * 2.0 + reply.usage.completion_tokens * 8.0) / 1e6)
    assert (primary["input_tokens_total"], primary["cost_usd_total"]) == (0, None)


async def test_client_abort_ends_both_spans_as_499(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI],
        exporter: InMemorySpanExporter) -> None:
    p, _ = fakes
    p.script.push(Fault.HANG)
    body = {"model": "chat", "messages": MESSAGES}
    async with aiohttp.ClientSession() as s:
        with pytest.raises(TimeoutError):
            async with s.post(gateway.url + "/v1/chat/completions", json=body,
                              timeout=aiohttp.ClientTimeout(total=0.5)):
                pass
    await wait_for(lambda: len(exporter.get_finished_spans()) == 2)
    server, (attempt,) = _spans(exporter)
    assert (server.attributes or {})["http.response.status_code"] == 499
    assert (attempt.attributes or {})[error_attributes.ERROR_TYPE] == "client_closed"


async def test_unrouted_paths_do_not_name_spans(
        gateway: Gateway, exporter: InMemorySpanExporter) -> None:
    async with (aiohttp.ClientSession() as s,
                s.get(gateway.url + "/no/such/" + "x" * 5000) as r):
        assert r.status == 404
    [server] = exporter.get_finished_spans()
    assert server.name == "GET"
    assert len(str((server.attributes or {})["url.path"])) == 1000
