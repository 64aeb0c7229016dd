"""OpenTelemetry traces of requests and their attempts, with the GenAI semantic conventions.

`from_env` builds a `Telemetry` when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, `OTEL_TRACES_EXPORTER` is unset or `otlp`
and `OTEL_SDK_DISABLED` is not true; the SDK reads every other `OTEL_*` variable itself
(protocol of the exporter is OTLP/HTTP protobuf, sampler, service name and resource,
batch sizes and delays). Otherwise it returns None and no span object is ever made: the
tracing middleware is the plain one, and the router, the attempt runner, the JSON
answer and the stream relay each check `trace.span is None` (or `call.spans`) once,
which is all tracing costs when off (`bench/tracing_off.py` measures it).

Spans (semantic conventions pinned by `opentelemetry-semantic-conventions`, see
`docs/operations.md`): one SERVER span per request (`{method} {path}`, child of the
caller's W3C `traceparent` when it sent one) and one CLIENT span per attempt, named
`chat {model}`, a child of the server span, whose context is sent upstream as
`traceparent`. A candidate skipped without a request (cooling down, context window too
small, missing credential) is a zero-length CLIENT span with `switchyard.skipped=true`,
so a trace shows the whole walk. The served attempt ends with the request, so a
streamed answer's span covers the stream and carries the stream's usage.

The server span carries the caller's namespace (`switchyard.caller.namespace`, the same
bounded label as the metrics) when `--auth kubernetes` knows it.

Must not: record prompt or completion content, or key material (attributes are routing
facts, models, token counts, outcomes and costs only). Content capture is not offered:
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` is refused with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import orjson
from opentelemetry import trace as otel_trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from switchyard_gateway import errors
from switchyard_gateway.config.compiled import CompiledEndpoint, CompiledTarget
from switchyard_gateway.pricing import PriceTable
from switchyard_gateway.providers.base import Usage
from switchyard_gateway.routing.router import RequestTrace
from switchyard_schema import Provider

log = logging.getLogger(__name__)
#: `service.name` unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names one.
DEFAULT_SERVICE_NAME = "switchyard-gateway"
_NAMES = gen_ai.GenAiProviderNameValues
#: The `gen_ai.provider.name` well-known values, by the manifest's provider (an
#: OpenAI-compatible server has none: it keeps its manifest name, a custom value).
_PROVIDER_NAMES = {Provider.OPENAI.value: _NAMES.OPENAI.value,
                   Provider.ANTHROPIC.value: _NAMES.ANTHROPIC.value,
                   Provider.GEMINI.value: _NAMES.GCP_GEMINI.value,
                   Provider.AZURE_OPENAI.value: _NAMES.AZURE_AI_OPENAI.value,
                   Provider.MISTRAL.value: _NAMES.MISTRAL_AI.value}
#: A model name or finish reason longer than this is cut (they are identifiers).
_FIELD_LIMIT = 100
#: A request path longer than this is cut on the server span.
_PATH_LIMIT = 1000
#: Finish reasons kept per answer (one per choice; a caller may ask for many choices).
_REASONS_LIMIT = 16
#: `gen_ai.operation.name` by the endpoint's task.
OPERATIONS = {"chat": "chat", "embeddings": "embeddings", "completions": "text_completion"}
#: The GenAI instrumentations' opt-in for prompt and completion content.
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def provider_name(provider: str) -> str:
    """The `gen_ai.provider.name` value of a manifest's provider."""
    return _PROVIDER_NAMES.get(provider, provider)


def signal_enabled(env: Mapping[str, str], signal: str) -> bool:
    """Is the OTLP export of `signal` (`traces`, `metrics`) asked for by the standard
    variables: an endpoint (general or the signal's), the exporter unset or `otlp`, the
    SDK not disabled?"""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower()
    if exporter != "otlp":
        if exporter != "none":
            log.warning("OTEL_%s_EXPORTER=%s is not supported (only otlp): %s off",
                        signal.upper(), exporter[:40], signal)
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or
                env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"))


def enabled_by(env: Mapping[str, str]) -> bool:
    """Is tracing asked for by the standard variables?"""
    return signal_enabled(env, "traces")


def resource(env: Mapping[str, str]) -> Resource:
    """The SDK's resource from OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME, with our
    service name when neither names one."""
    named = ("OTEL_SERVICE_NAME" in env
             or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    return Resource.create({} if named else {"service.name": DEFAULT_SERVICE_NAME})


def refuse_content_capture(env: Mapping[str, str]) -> None:
    """Content recording is not offered: say so when the opt-in is set."""
    if env.get(CAPTURE_CONTENT, "").strip().lower() not in ("", "false", "no_content"):
        log.warning("%s is set, but Switchyard never records prompt or completion content "
                    "(docs/operations.md); spans carry token counts and models only",
                    CAPTURE_CONTENT)


def from_env(env: Mapping[str, str] | None = None,
             prices: PriceTable | None = None) -> Telemetry | None:
    """A `Telemetry` exporting OTLP/HTTP in batches, or None when tracing is off."""
    env = os.environ if env is None else env
    if not enabled_by(env):
        return None
    refuse_content_capture(env)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported: exporting with "
                    "http/protobuf", protocol[:40])
    # The sampler (OTEL_TRACES_SAMPLER*) and resource (OTEL_RESOURCE_ATTRIBUTES) from env;
    # the exporter and the batching read their OTEL_EXPORTER_OTLP_* and OTEL_BSP_* too.
    provider = TracerProvider(resource=resource(env))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Telemetry(provider, prices)


class Telemetry:
    """The tracer of one app; `shutdown` flushes what is queued (app cleanup)."""

    def __init__(self, provider: TracerProvider, prices: PriceTable | None = None) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("switchyard_gateway")
        self.prices = prices

    def start(self, method: str, route: str, path: str,
              headers: Mapping[str, str]) -> RequestSpans:
        """The server span of one request (child of the caller's `traceparent`).

        Named by the matched `route` (empty: none matched), never the raw path, so a
        caller cannot mint span names; the path is an attribute, cut.
        """
        parent = extract(headers) if "traceparent" in headers else None
        attributes: dict[str, AttributeValue] = {"http.request.method": method[:_FIELD_LIMIT],
                                                 "url.path": path[:_PATH_LIMIT]}
        if route:
            attributes["http.route"] = route
        server = self.tracer.start_span(f"{method[:_FIELD_LIMIT]} {route}".rstrip(),
                                        context=parent, kind=SpanKind.SERVER,
                                        attributes=attributes)
        return RequestSpans(self, server)

    def shutdown(self) -> None:
        """Export what is queued and stop."""
        self.provider.shutdown()


class RequestSpans:
    """The spans of one request: the router opens and ends one per attempt."""

    __slots__ = ("_context", "_finish_reasons", "_open", "_opened", "_owner",
                 "_response_model", "_server")

    def __init__(self, owner: Telemetry, server: otel_trace.Span) -> None:
        self._owner = owner
        self._server = server
        self._context = otel_trace.set_span_in_context(server)
        self._open: otel_trace.Span | None = None
        self._opened: tuple[CompiledTarget, int] | None = None
        self._response_model: str | None = None
        self._finish_reasons: list[str] = []

    def attempt(self, endpoint: CompiledEndpoint, target: CompiledTarget, number: int) -> None:
        """An attempt at `target` is about to be sent (`number` counts from 1)."""
        self._open = self._client_span(endpoint, target, number)
        self._opened = (target, number)

    def _client_span(self, endpoint: CompiledEndpoint, target: CompiledTarget,
                     number: int) -> otel_trace.Span:
        operation = OPERATIONS.get(endpoint.task.value, endpoint.task.value)
        return self._owner.tracer.start_span(
            f"{operation} {target.model}", context=self._context, kind=SpanKind.CLIENT,
            attributes={gen_ai.GEN_AI_OPERATION_NAME: operation,
                        gen_ai.GEN_AI_PROVIDER_NAME: provider_name(target.provider.value),
                        gen_ai.GEN_AI_REQUEST_MODEL: target.model,
                        "switchyard.endpoint": endpoint.key,
                        "switchyard.target": target.name,
                        "switchyard.attempt": number})

    def traceparent(self) -> str | None:
        """The W3C `traceparent` of the attempt in flight (None: none is)."""
        span = self._open
        if span is None:
            return None
        ctx = span.get_span_context()
        return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"

    def answered(self, body: bytes) -> None:
        """Read the model and finish reasons of a whole answer (never its content)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        model = data.get("model")
        if isinstance(model, str):
            self._response_model = model[:_FIELD_LIMIT]
        choices = data.get("choices")
        if isinstance(choices, list):
            self._finish_reasons = [c["finish_reason"][:_FIELD_LIMIT]
                                    for c in choices[:_REASONS_LIMIT]
                                    if isinstance(c, dict)
                                    and isinstance(c.get("finish_reason"), str)]

    def streamed(self, model: str | None, finish_reasons: list[str]) -> None:
        """The served stream ended: the model it named and its choices' finish reasons."""
        if model:
            self._response_model = model[:_FIELD_LIMIT]
        self._finish_reasons = [r[:_FIELD_LIMIT] for r in finish_reasons[:_REASONS_LIMIT]]

    def failed(self, record: errors.AttemptRecord, usage: Usage | None = None) -> None:
        """The attempt in flight failed as `record` says."""
        span = self._open
        self._open = None
        if span is None:
            return
        self._end_attempt(span, record, usage)

    def skipped(self, endpoint: CompiledEndpoint, target: CompiledTarget, number: int,
                record: errors.AttemptRecord) -> None:
        """A candidate passed over without a request: a zero-length span."""
        span = self._client_span(endpoint, target, number)
        self._end_attempt(span, record, None, extra={"switchyard.skipped": True})

    def _end_attempt(self, span: otel_trace.Span, record: errors.AttemptRecord,
                     usage: Usage | None, request_model: str | None = None,
                     response_model: str | None = None,
                     extra: dict[str, AttributeValue] | None = None) -> None:
        # One `set_attributes` call: the SDK takes a lock and validates per call.
        attributes: dict[str, AttributeValue] = extra or {}
        attributes["switchyard.outcome"] = record.outcome
        if record.status is not None:
            attributes["http.response.status_code"] = record.status
        if usage is not None:
            attributes[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] = usage.prompt_tokens
            attributes[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.completion_tokens
            prices = self._owner.prices
            # Priced by the model asked for (the price table's keys are the targets' models).
            cost = (prices.cost(request_model, usage)
                    if prices is not None and request_model else None)
            if cost is not None:
                attributes["switchyard.cost.usd"] = cost
        if response_model:
            attributes[gen_ai.GEN_AI_RESPONSE_MODEL] = response_model
        if record.outcome != "ok":
            attributes[error_attributes.ERROR_TYPE] = record.outcome
            span.set_status(Status(StatusCode.ERROR, record.outcome))
        span.set_attributes(attributes)
        span.end()

    def finish(self, status: int, trace: RequestTrace) -> None:
        """The request is answered (`status`): end the served attempt, then the server span."""
        attempts, usage = trace.attempts, trace.usage
        span = self._open
        self._open = None
        if span is not None:
            opened = self._opened
            record = attempts[-1] if attempts else errors.AttemptRecord(
                "", "client_closed", None, 0.0, sent=True)
            extra: dict[str, AttributeValue] = {}
            if self._finish_reasons:
                extra[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = self._finish_reasons
            model = opened[0].model if opened is not None else None
            self._end_attempt(span, record, usage, model, self._response_model or model, extra)
        server = self._server
        server.set_attribute("http.response.status_code", status)
        if trace.caller_namespace:  # --auth kubernetes: the bounded label, never a name
            server.set_attribute("switchyard.caller.namespace", trace.caller_namespace)
        if status >= 500 or status == 499:
            server.set_attribute(error_attributes.ERROR_TYPE, str(status))
            server.set_status(Status(StatusCode.ERROR))
        server.end()

