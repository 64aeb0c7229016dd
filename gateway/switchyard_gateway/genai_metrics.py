"""The GenAI semantic-convention metrics over OTLP: token usage, duration, first chunk.

`from_env` builds a `GenAIMeters` when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set, `OTEL_METRICS_EXPORTER` is unset or `otlp`
and `OTEL_SDK_DISABLED` is not true; the SDK reads the rest itself (export interval and
timeout `OTEL_METRIC_EXPORT_*`, the exporter's `OTEL_EXPORTER_OTLP_[METRICS_]*` headers,
timeout, compression and temporality preference, the resource). Otherwise it returns
None and the accounting middleware checks `meters is None` once per request: nothing
else runs. The same figures are always in Prometheus (`metrics.py`); these are for a
platform whose pipeline is OpenTelemetry.

Recorded once per accounted request (`http/accounting.py`), for the served attempt, or
for the last target tried when none served (names pinned by
`opentelemetry-semantic-conventions`):
- `gen_ai.client.token.usage` ({token}): input and output tokens as the provider
  reported them (`gen_ai.token.type`); nothing when it reported none;
- `gen_ai.client.operation.duration` (s): the request's whole time in the gateway,
  fallbacks included, with `error.type` (the HTTP status) when it failed;
- `gen_ai.client.operation.time_to_first_chunk` (s): streams, from the served attempt's
  start to its first content event.
Attributes: `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
`switchyard.endpoint`, `switchyard.target` and, with `--auth kubernetes`,
`switchyard.caller.namespace` (the bounded label of `kube_auth.CallerLabels`).
Must not: record content, key material, tokens or caller names; grow without bound (the
attribute sets are memoised up to `_MAX_MEMO`, like the Prometheus children).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping

from opentelemetry.metrics import Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.util.types import AttributeValue

from switchyard_gateway import telemetry
from switchyard_gateway.config.compiled import CompiledEndpoint, CompiledTarget
from switchyard_gateway.routing.router import RequestTrace

#: The semantic conventions' advised buckets (`gen_ai.client.token.usage`).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
#: The semantic conventions' advised buckets (`gen_ai.client.operation.duration`).
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24,
                   20.48, 40.96, 81.92)
#: Attribute sets kept before the memo is emptied.
_MAX_MEMO = 10_000

Attributes = dict[str, AttributeValue]


def from_env(env: Mapping[str, str] | None = None) -> GenAIMeters | None:
    """`GenAIMeters` exporting OTLP/HTTP periodically, or None when metrics export is off."""
    env = os.environ if env is None else env
    if not telemetry.signal_enabled(env, "metrics"):
        return None
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    # Each process (`--workers N`) is its own instance: without a distinct
    # `service.instance.id` a backend would merge their cumulative series.
    instance = Resource.create({"service.instance.id": uuid.uuid4().hex})
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    return GenAIMeters(reader, instance.merge(telemetry.resource(env)))


class GenAIMeters:
    """The three GenAI histograms of one app; `shutdown` exports what is left."""

    def __init__(self, reader: MetricReader, resource: Resource | None = None) -> None:
        self.provider = MeterProvider(metric_readers=[reader],
                                      resource=resource or Resource.create({}))
        meter = self.provider.get_meter("switchyard_gateway")
        self._tokens: Histogram = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self._duration: Histogram = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION, unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)
        self._first_chunk: Histogram = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, unit="s",
            description="Time to receive the first chunk.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)
        self._memo: dict[tuple[str, ...], tuple[Attributes, Attributes, Attributes]] = {}

    def record(self, trace: RequestTrace, status: int, seconds: float,
               endpoints: Mapping[str, CompiledEndpoint]) -> None:
        """Record one accounted request (`endpoints`: the store's current snapshot)."""
        target_name = trace.target or (trace.attempts[-1].target if trace.attempts else "")
        endpoint = endpoints.get(trace.endpoint)
        if endpoint is None or not target_name:
            return  # refused before routing (404, 401, shed): not a GenAI operation
        base, inputs, outputs = self._attributes(endpoint, target_name, trace)
        if status >= 400:
            self._duration.record(seconds, {**base, error_attributes.ERROR_TYPE: str(status)})
        else:
            self._duration.record(seconds, base)
        usage = trace.usage
        if usage is not None:
            self._tokens.record(usage.prompt_tokens, inputs)
            self._tokens.record(usage.completion_tokens, outputs)
        if trace.first_token_seconds is not None:
            self._first_chunk.record(trace.first_token_seconds, base)

    def _attributes(self, endpoint: CompiledEndpoint, target_name: str,
                    trace: RequestTrace) -> tuple[Attributes, Attributes, Attributes]:
        """The attribute sets (all, input tokens, output tokens), memoised."""
        key = (endpoint.key, str(endpoint.generation), target_name, trace.caller_namespace)
        found = self._memo.get(key)
        if found is not None:
            return found
        base: Attributes = {
            gen_ai.GEN_AI_OPERATION_NAME: telemetry.OPERATIONS.get(endpoint.task.value,
                                                                   endpoint.task.value),
            "switchyard.endpoint": endpoint.key,
            "switchyard.target": target_name,
        }
        target = _target(endpoint, target_name)
        if target is not None:
            base[gen_ai.GEN_AI_PROVIDER_NAME] = telemetry.provider_name(target.provider.value)
            base[gen_ai.GEN_AI_REQUEST_MODEL] = target.model
        if trace.caller_namespace:
            base["switchyard.caller.namespace"] = trace.caller_namespace
        found = (base, {**base, gen_ai.GEN_AI_TOKEN_TYPE: "input"},
                 {**base, gen_ai.GEN_AI_TOKEN_TYPE: "output"})
        if len(self._memo) >= _MAX_MEMO:
            self._memo.clear()
        self._memo[key] = found
        return found

    def shutdown(self) -> None:
        """Export what is recorded and stop (app cleanup; blocking, bounded by the SDK)."""
        self.provider.shutdown()


def _target(endpoint: CompiledEndpoint, name: str) -> CompiledTarget | None:
    for target in (*endpoint.split, *endpoint.fallbacks):
        if target.name == name:
            return target
    return None
