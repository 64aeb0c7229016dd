"""A real `switchyard gateway` process exports its spans over OTLP/HTTP to a loopback collector.

The collector is an aiohttp app that decodes `ExportTraceServiceRequest` with the
`opentelemetry-proto` package, as a real collector would. Tracing is turned on the
standard way only (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_BSP_*`).
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
        self.url = ""

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
