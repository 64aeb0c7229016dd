"""What OpenTelemetry costs a request when it is off: the hooks, timed, against the request.

With no `OTEL_*` endpoint set, tracing and the OTLP metrics leave exactly these on a
request's path (`switchyard_gateway/telemetry.py`, `genai_metrics.py`); the tracing
middleware is the plain one, chosen once at start:
- `RequestTrace.span` set to its default None when the trace is made, and read once to
  build the `Call`;
- `trace.span is not None` in the router, once per attempt;
- `call.spans is not None` in the attempt runner, once per attempt;
- `trace.span is not None` once for the answer (the JSON answer in `proxy.py`, or the
  end of a relayed stream in `sse.py`);
- `state.meters is not None` once in the accounting.
`hooks_ns` times those statements, on real `RequestTrace`, `Call` and `GatewayState`
objects, for a one-attempt request, in a tight loop; the loop's own cost is included,
so the figure is an upper bound. `__main__` divides it by switchyard's CPU per request
measured in the same run (the `switchyard` row): the target is under 2%. There is no
build of the gateway with the hooks compiled out to compare against; this is their
whole cost, not an estimate of it.
"""

from __future__ import annotations

import statistics
import timeit
from typing import Any

from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.http.state import GatewayState
from switchyard_gateway.metrics import GatewayMetrics
from switchyard_gateway.routing.attempts import Call
from switchyard_gateway.routing.router import RequestTrace
from switchyard_gateway.settings import GatewaySettings

#: The off-path statements of one request with one attempt, as the gateway runs them.
STATEMENTS = """
trace.span = None
spans = trace.span
if trace.span is not None: trace.span.attempt(None, None, 1)
if call.spans is not None: call.spans.traceparent()
if trace.span is not None: trace.span.answered(b"")
if state.meters is not None: state.meters.record(trace, 200, 0.0, {})
"""
#: Statements per request: the target is for the request, not for each statement.
NUMBER = 200_000
REPEAT = 7


def _objects() -> dict[str, Any]:
    trace = RequestTrace(request_id="0" * 32)
    call = Call(endpoint=None, body={}, request_id=trace.request_id,  # type: ignore[arg-type]
                spans=trace.span)
    state = GatewayState(settings=GatewaySettings(), store=ConfigStore(),
                         metrics=GatewayMetrics())
    return {"trace": trace, "call": call, "state": state}


def hooks_ns(number: int = NUMBER, repeat: int = REPEAT) -> float:
    """Nanoseconds the off hooks of one request take (median of `repeat` runs)."""
    timer = timeit.Timer(STATEMENTS, globals=_objects())
    runs = timer.repeat(repeat=repeat, number=number)
    return statistics.median(runs) / number * 1e9


def section(hooks: float, cpu_us: float | None) -> list[str]:
    """The markdown lines: the hooks' cost, and its share of a request's CPU."""
    share = None if not cpu_us else hooks / (cpu_us * 1000.0)
    verdict = "not measured" if share is None else ("met" if share < 0.02 else "missed")
    return [
        "## Tracing off",
        "",
        "With no `OTEL_*` endpoint set, tracing and the OTLP metrics leave a few `is None` "
        "checks on a request's path (bench/tracing_off.py lists them). Timed together for "
        f"a one-attempt request ({NUMBER:,} iterations, median of {REPEAT}, loop cost "
        "included: an upper bound), against switchyard's CPU per request in this run:",
        "",
        "| measure | value |",
        "|---|---|",
        f"| telemetry hooks with tracing off, ns/request | {hooks:.0f} |",
        f"| switchyard CPU us/request (same run) | "
        f"{'n/a' if cpu_us is None else f'{cpu_us:.0f}'} |",
        f"| share (target < 2%) | {'n/a' if share is None else f'{share:.3%}'}: {verdict} |",
        "",
    ]
