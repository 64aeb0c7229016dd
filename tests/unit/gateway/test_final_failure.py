"""The router's final answer when no candidate served, as a table: which status, which
Retry-After, which last target. A stub attempt runner raises each target's scripted error
(a pure unit: no sockets), and the breakers run on an injected clock."""

from __future__ import annotations

import random
from typing import Any, cast

import pytest

from switchyard_gateway import errors
from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.routing.attempts import AttemptRunner, Call
from switchyard_gateway.routing.cooldown import Cooldowns
from switchyard_gateway.routing.router import RequestTrace, Router
from tests.unit.gateway.endpoints import compiled, target

ENDPOINT = compiled(split=[target("a", 100)], fallbacks=[target("b", model="b-model")],
                    policy={"cooldown": {"failureThreshold": 1, "seconds": 30}})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ScriptedRunner:
    """Raises the next scripted error of the target it is asked to call."""

    def __init__(self) -> None:
        self.script: dict[str, list[errors.UpstreamError]] = {"a": [], "b": []}
        self.calls: list[str] = []

    async def complete(self, call: Call, target: CompiledTarget, deadline: float) -> Any:
        self.calls.append(target.name)
        raise self.script[target.name].pop(0)


def limited(retry_after: float | None = None) -> errors.RateLimited:
    return errors.RateLimited("upstream answered 429", upstream_status=429,
                              retry_after=retry_after)


def broken() -> errors.UpstreamServerError:
    return errors.UpstreamServerError("upstream answered 503", upstream_status=503)


async def _final(router: Router) -> tuple[errors.AllAttemptsFailed, RequestTrace]:
    trace = RequestTrace("r")
    with pytest.raises(errors.AllAttemptsFailed) as info:
        await router.complete(Call(ENDPOINT, {}, "r"), trace)
    return info.value, trace


@pytest.mark.parametrize(("errors_", "now", "then"), [
    # errors of a and b in request 1; (status, Retry-After) of request 1; and of request 2,
    # where both are skipped while cooling down
    ([limited(), limited()], (429, 30), (429, 30)),  # no Retry-After: the cooldown's end
    ([limited(7), limited(4)], (429, 4), (429, 30)),  # the providers' shortest, then cooldown
    ([limited(), broken()], (502, None), (502, 30)),  # one out for a 503: not a 429
    ([broken(), broken()], (502, None), (502, 30)),
])
async def test_final_answer_now_and_while_cooling_down(
        errors_: list[errors.UpstreamError], now: tuple[int, int | None],
        then: tuple[int, int]) -> None:
    clock = Clock()
    runner = ScriptedRunner()
    router = Router(cast(AttemptRunner, runner), Cooldowns(clock), random.Random(1))
    runner.script = {"a": [errors_[0]], "b": [errors_[1]]}
    first, _ = await _final(router)
    clock.now += 0.5
    second, trace = await _final(router)
    assert runner.calls == ["a", "b"]  # the second request sent nothing
    assert (first.final_status, _seconds(first.retry_after)) == now
    assert (second.final_status, _seconds(second.retry_after)) == then
    assert trace.target == "b"  # the last one skipped


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)


async def test_a_bare_429_below_the_threshold_gets_the_default_retry_after() -> None:
    endpoint = compiled(split=[target("a", 100)], policy={"cooldown": {"failureThreshold": 5},
                                                          "retry": {"maxRetries": 0}})
    runner = ScriptedRunner()
    runner.script["a"] = [limited()]
    router = Router(cast(AttemptRunner, runner), Cooldowns(Clock()), random.Random(1))
    trace = RequestTrace("r")
    with pytest.raises(errors.AllAttemptsFailed) as info:
        await router.complete(Call(endpoint, {}, "r"), trace)
    assert (info.value.final_status, info.value.retry_after) == (429, errors.DEFAULT_RETRY_AFTER)
