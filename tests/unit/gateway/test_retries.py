"""Same-target retries (`policy.retry`) and `contextLength` fallbacks, on a stub attempt
runner (a pure unit: no sockets). Backoffs are a few milliseconds so the tests sleep for
real without taking long; the breakers run on the real monotonic clock for the same reason.
"""

from __future__ import annotations

import random
import time
from typing import Any, cast

import pytest

from switchyard_gateway import errors, redaction, transport
from switchyard_gateway.config.compiled import CompiledEndpoint, CompiledTarget
from switchyard_gateway.providers.base import ParsedResponse
from switchyard_gateway.routing.attempts import AttemptRunner, Call
from switchyard_gateway.routing.cooldown import Cooldowns
from switchyard_gateway.routing.router import RequestTrace, Router
from tests.unit.gateway.endpoints import compiled, target

OK = ParsedResponse(body=b"{}", usage=None)
FAST = {"retry": {"backoffMilliseconds": 10}}


class ScriptedRunner:
    """Answers each target from its script (an error raises, None succeeds), noting when."""

    def __init__(self, **script: list[errors.UpstreamError | None]) -> None:
        self.script = script
        self.calls: list[tuple[str, float]] = []

    async def complete(self, call: Call, target: CompiledTarget, deadline: float) -> Any:
        self.calls.append((target.name, time.monotonic()))
        outcome = self.script[target.name].pop(0) if self.script[target.name] else None
        if outcome is not None:
            raise outcome
        return OK

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _router(runner: ScriptedRunner) -> Router:
    return Router(cast(AttemptRunner, runner), Cooldowns(), random.Random(1))


def _endpoint(policy: dict[str, Any], **windows: int) -> CompiledEndpoint:
    def with_window(name: str, weight: int | None = None) -> dict[str, Any]:
        spec = target(name, weight, model=name)
        if name in windows:
            spec["contextWindow"] = windows[name]
        return spec
    return compiled(split=[with_window("a", 100)],
                    fallbacks=[with_window("b"), with_window("c")], policy=policy)


def server_error() -> errors.UpstreamServerError:
    return errors.UpstreamServerError("upstream answered 500", upstream_status=500)


def too_long() -> errors.ContextLengthExceeded:
    return errors.ContextLengthExceeded("too long", upstream_status=400,
                                        provider_code="context_length_exceeded")


async def test_a_single_500_is_retried_on_the_same_target() -> None:
    runner = ScriptedRunner(a=[server_error()], b=[], c=[])
    trace = RequestTrace("r")
    await _router(runner).complete(Call(_endpoint(FAST), {}, "r"), trace)
    assert runner.names == ["a", "a"]
    assert [(a.target, a.outcome) for a in trace.attempts] == [("a", "serverError"),
                                                                ("a", "ok")]
    assert trace.sent == 2  # x-switchyard-attempts counts the retry


async def test_a_429_with_a_short_retry_after_waits_that_long_on_the_same_target() -> None:
    runner = ScriptedRunner(a=[errors.RateLimited("429", upstream_status=429,
                                                  retry_after=0.3)], b=[], c=[])
    await _router(runner).complete(Call(_endpoint(FAST), {}, "r"), RequestTrace("r"))
    assert runner.names == ["a", "a"]
    assert runner.calls[1][1] - runner.calls[0][1] >= 0.3


async def test_a_retry_after_longer_than_the_policy_allows_falls_back_at_once() -> None:
    runner = ScriptedRunner(a=[errors.RateLimited("429", upstream_status=429,
                                                  retry_after=30.0)], b=[], c=[])
    await _router(runner).complete(Call(_endpoint(FAST), {}, "r"), RequestTrace("r"))
    assert runner.names == ["a", "b"]


async def test_a_retry_that_would_pass_the_deadline_is_not_waited_for() -> None:
    policy = {"requestTimeoutSeconds": 1, "attemptTimeoutSeconds": 1,
              "retry": {"maxRetryAfterSeconds": 5}}
    runner = ScriptedRunner(a=[errors.RateLimited("429", upstream_status=429,
                                                  retry_after=2.0)], b=[], c=[])
    await _router(runner).complete(Call(_endpoint(policy), {}, "r"), RequestTrace("r"))
    assert runner.names == ["a", "b"]


async def test_retries_are_bounded_then_the_fallback_serves() -> None:
    policy = {"retry": {"maxRetries": 2, "backoffMilliseconds": 10},
              "cooldown": {"failureThreshold": 10}}
    runner = ScriptedRunner(a=[server_error()] * 5, b=[], c=[])
    await _router(runner).complete(Call(_endpoint(policy), {}, "r"), RequestTrace("r"))
    assert runner.names == ["a", "a", "a", "b"]
    gaps = [b[1] - a[1] for a, b in zip(runner.calls, runner.calls[1:3], strict=False)]
    assert gaps[0] >= 0.005 and gaps[1] >= 0.01  # doubling backoff, jittered (half to full)


@pytest.mark.parametrize("error", [
    errors.UpstreamTimeout("slow"),
    errors.ProviderAuthError("401", upstream_status=401),
])
async def test_timeouts_and_auth_failures_are_not_retried(error: errors.UpstreamError) -> None:
    runner = ScriptedRunner(a=[error], b=[], c=[])
    await _router(runner).complete(Call(_endpoint(FAST), {}, "r"), RequestTrace("r"))
    assert runner.names == ["a", "b"]


async def test_a_failure_that_trips_the_breaker_is_not_retried() -> None:
    policy = {**FAST, "cooldown": {"failureThreshold": 1}}
    runner = ScriptedRunner(a=[server_error()], b=[], c=[])
    await _router(runner).complete(Call(_endpoint(policy), {}, "r"), RequestTrace("r"))
    assert runner.names == ["a", "b"]


async def test_context_length_is_a_caller_fault_unless_the_policy_names_it() -> None:
    runner = ScriptedRunner(a=[too_long()], b=[], c=[])
    with pytest.raises(errors.ContextLengthExceeded):
        await _router(runner).complete(Call(_endpoint(FAST), {}, "r"), RequestTrace("r"))
    assert runner.names == ["a"]


async def test_context_length_skips_fallbacks_known_to_be_no_larger() -> None:
    policy = {"fallbackOn": ["contextLength", "serverError"]}
    runner = ScriptedRunner(a=[too_long()], b=[], c=[])
    trace = RequestTrace("r")
    endpoint = _endpoint(policy, a=8000, b=8000, c=128000)
    await _router(runner).complete(Call(endpoint, {}, "r"), trace)
    assert runner.names == ["a", "c"]
    assert [(a.target, a.outcome, a.sent) for a in trace.attempts] == [
        ("a", "contextLength", True), ("b", "contextLength", False), ("c", "ok", True)]


async def test_context_length_with_no_larger_candidate_returns_the_providers_error() -> None:
    policy = {"fallbackOn": ["contextLength"]}
    runner = ScriptedRunner(a=[too_long()], b=[], c=[])
    endpoint = _endpoint(policy, a=8000, b=4000, c=8000)
    with pytest.raises(errors.ContextLengthExceeded) as info:
        await _router(runner).complete(Call(endpoint, {}, "r"), RequestTrace("r"))
    assert info.value.provider_code == "context_length_exceeded"
    assert runner.names == ["a"]


async def test_provider_error_type_code_and_param_are_scrubbed_of_keys() -> None:
    """The provider's `type`, `code` and `param` now reach the caller: a provider that
    echoes the key (or half of it) in them leaks nothing, as with the message."""
    key = "sk-live-0123456789abcdefXYZ"
    fault = errors.CallerFault(f"bad key {key}", upstream_status=400,
                               provider_type=f"invalid_{key}", provider_code=key[:14],
                               provider_param=f"messages[{key[6:20]}]")
    runner = ScriptedRunner(a=[fault], b=[], c=[])
    router = Router(cast(AttemptRunner, runner), Cooldowns(), random.Random(1),
                    redactor=lambda: redaction.Redactor((key,)))
    with pytest.raises(errors.CallerFault) as info:
        await router.complete(Call(_endpoint(FAST), {}, "r"), RequestTrace("r"))
    raised = info.value
    fields = (raised.message, raised.provider_type, raised.provider_code, raised.provider_param)
    for text in fields:
        assert text is not None and "[REDACTED]" in text
        assert not any(key[i:i + 8] in text for i in range(len(key) - 7))


def _caused(error: errors.UpstreamError, cause: BaseException) -> errors.UpstreamError:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("error", "retried"), [
    (_caused(errors.UpstreamConnectionError("reset"), transport.ConnectionClosed()), True),
    (_caused(errors.UpstreamConnectionError("refused"),
             transport.ConnectError("h", 443, ConnectionRefusedError())), False),
    (_caused(errors.UpstreamConnectionError("cut"), transport.BodyCutOff()), False),
    (errors.UpstreamServerError("upstream answered 503", upstream_status=503), True),
    (errors.UpstreamServerError("upstream sent a malformed stream event", upstream_status=200),
     False),
    (errors.UpstreamServerError("the provider's answer is broken"), False),
])
async def test_only_blips_are_retried(error: errors.UpstreamError, retried: bool) -> None:
    """A reset before the answer and an HTTP 5xx are retried; a connection never opened
    (nothing reached the provider; a refused address must never be retried) and a 200
    that broke are not: the fallback is the better bet."""
    runner = ScriptedRunner(a=[error], b=[], c=[])
    await _router(runner).complete(Call(_endpoint(FAST), {}, "r"), RequestTrace("r"))
    assert runner.names == (["a", "a"] if retried else ["a", "b"])
