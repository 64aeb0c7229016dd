"""A real `switchyard gateway` process exports spans and GenAI metrics over OTLP/HTTP to a
loopback collector.

The collector is an aiohttp app that decodes `ExportTraceServiceRequest` and
`ExportMetricsServiceRequest` with the `opentelemetry-proto` package, as a real collector
would. Export is turned on the standard way only (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_SERVICE_NAME`, `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`).
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import yaml
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from switchyard_testing import stack
from switchyard_testing.fakes import FakeOpenAI, Fault
from tests.integration.gateway.kit import endpoint, openai_target, wait_for

KEYS = {"P_KEY": "sk-otlp-primary-1111", "F1_KEY": "sk-otlp-fallback-2222"}


class Collector:
    """Spans received, as (resource attributes, span) pairs."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Any]] = []
        #: Metric name -> (resource attributes, metric) of every export, in order.
        self.metrics: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        self.url = ""

    async def metric_exports(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportMetricsServiceRequest.FromString(await request.read())
        for resource_metrics in export.resource_metrics:
            resource = _attrs(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self.metrics.setdefault(metric.name, []).append((resource, metric))
        return web.Response(body=ExportMetricsServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = _attrs(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((resource, span) for span in scope_spans.spans)
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")


def _value(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value") or "string_value")


def _attrs(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    found = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", found.traces)
    app.router.add_post("/v1/metrics", found.metric_exports)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield found
    finally:
        await runner.cleanup()


async def test_gateway_process_exports_attempt_spans_over_otlp_http(
        tmp_path: pathlib.Path, collector: Collector) -> None:
    async with (
        await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as p,
        await FakeOpenAI.start(name="fb1", expected_key=KEYS["F1_KEY"]) as f1,
    ):
        doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)],
                       [openai_target("fb1", f1.base_url, "F1_KEY")],
                       policy={"cooldown": {"failureThreshold": 1, "seconds": 30}})
        (tmp_path / "endpoints.yaml").write_text(yaml.safe_dump_all([doc]))
        env = {**KEYS, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
               "OTEL_SERVICE_NAME": "switchyard-test", "OTEL_BSP_SCHEDULE_DELAY": "50"}
        gw = stack.gateway(None, tmp_path, config=tmp_path / "endpoints.yaml", env=env)
        gw.start()
        try:
            await asyncio.to_thread(gw.wait_for, "/readyz", 60.0)
            p.script.push(Fault.SERVER_ERROR)
            async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused",
                                          max_retries=0) as client:
                reply = await client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "hi"}])
            assert reply.usage is not None
            await wait_for(lambda: len(collector.spans) >= 3, 20.0)
        finally:
            await asyncio.to_thread(gw.stop, 15.0)

    resource = collector.spans[0][0]
    assert resource["service.name"] == "switchyard-test"
    spans = [span for _, span in collector.spans]
    servers = [s for s in spans if s.kind == s.SPAN_KIND_SERVER]
    clients = [s for s in spans if s.kind == s.SPAN_KIND_CLIENT]
    assert len(servers) == 1
    attempts = sorted(clients, key=lambda s: _attrs(s.attributes)["switchyard.attempt"])
    targets = [_attrs(s.attributes)["switchyard.target"] for s in attempts]
    assert targets == ["primary", "fb1"]
    assert all(s.parent_span_id == servers[0].span_id for s in attempts)
    assert all(s.trace_id == servers[0].trace_id for s in attempts)
    served = _attrs(attempts[-1].attributes)
    assert served["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert served["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert _attrs(attempts[0].attributes)["error.type"] == "serverError"


async def test_gateway_process_exports_genai_metrics_over_otlp_http(
        tmp_path: pathlib.Path, collector: Collector) -> None:
    """A request that fails on its primary and is served by a fallback: its token usage,
    duration and (streamed) time to first chunk arrive as the GenAI metrics."""
    async with (
        await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as p,
        await FakeOpenAI.start(name="fb1", expected_key=KEYS["F1_KEY"]) as f1,
    ):
        doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100,
                                              model="model-a")],
                       [openai_target("fb1", f1.base_url, "F1_KEY", model="model-b")],
                       policy={"retry": {"maxRetries": 0}})
        (tmp_path / "endpoints.yaml").write_text(yaml.safe_dump_all([doc]))
        env = {**KEYS, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": collector.url + "/v1/metrics",
               "OTEL_METRIC_EXPORT_INTERVAL": "100", "OTEL_SERVICE_NAME": "switchyard-test"}
        gw = stack.gateway(None, tmp_path, config=tmp_path / "endpoints.yaml", env=env)
        gw.start()
        try:
            await asyncio.to_thread(gw.wait_for, "/readyz", 60.0)
            p.script.push(Fault.SERVER_ERROR)
            async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused",
                                          max_retries=0) as client:
                reply = await client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "hi"}])
                stream = await client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "hi"}], stream=True)
                async for _ in stream:
                    pass
            await wait_for(lambda: _points(collector, "gen_ai.client.token.usage") != []
                           and len(_points(collector, "gen_ai.client.operation.duration")
                                   [-1]) >= 1
                           and _points(collector,
                                       "gen_ai.client.operation.time_to_first_chunk") != [],
                           20.0)
        finally:
            await asyncio.to_thread(gw.stop, 15.0)
        assert not collector.spans  # only the metrics endpoint was set: no traces

    assert reply.usage is not None
    resource, _ = collector.metrics["gen_ai.client.token.usage"][-1]
    assert resource["service.name"] == "switchyard-test"
    assert resource["service.instance.id"]
    tokens = {_attrs(pt.attributes)["gen_ai.token.type"]: (_attrs(pt.attributes), pt)
              for pt in _points(collector, "gen_ai.client.token.usage")[-1]}
    attrs, inputs = tokens["input"]
    assert attrs == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                     "gen_ai.request.model": "model-b", "gen_ai.token.type": "input",
                     "switchyard.endpoint": "default/chat", "switchyard.target": "fb1"}
    assert (inputs.count, inputs.sum) == (1, reply.usage.prompt_tokens)
    assert tokens["output"][1].sum == reply.usage.completion_tokens
    durations = _points(collector, "gen_ai.client.operation.duration")[-1]
    targets = sorted(_attrs(pt.attributes)["switchyard.target"] for pt in durations)
    assert targets == ["fb1", "primary"]  # the stream was served by the split target
    [first_chunk] = _points(collector, "gen_ai.client.operation.time_to_first_chunk")[-1]
    assert _attrs(first_chunk.attributes)["switchyard.target"] == "primary"
    assert 0 < first_chunk.sum < 5


def _points(collector: Collector, name: str) -> list[Any]:
    """The histogram data points of each export of metric `name`, in order."""
    return [list(metric.histogram.data_points) for _, metric in collector.metrics.get(name, [])]
