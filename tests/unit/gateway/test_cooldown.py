"""The per-target circuit breaker, driven by an injected clock."""

from __future__ import annotations

import dataclasses

from switchyard_gateway.routing.cooldown import Cooldowns
from tests.unit.gateway.endpoints import compiled

POLICY = compiled(policy={"cooldown": {"failureThreshold": 2, "seconds": 10,
                                       "maxSeconds": 35}}).policy
KEY = ("default/chat", ("openai", "gpt", "", "env:K"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_and_probes_once_after_expiry() -> None:
    clock = Clock()
    cd = Cooldowns(clock)
    assert cd.allow(KEY, POLICY)
    assert not cd.failure(KEY, POLICY)
    assert cd.allow(KEY, POLICY)
    assert cd.failure(KEY, POLICY)  # second consecutive failure trips it
    assert not cd.allow(KEY, POLICY)
    assert cd.remaining(KEY) == 10.0
    clock.now += 9.9
    assert not cd.allow(KEY, POLICY)
    clock.now += 0.2
    assert cd.allow(KEY, POLICY)  # the probe
    assert not cd.allow(KEY, POLICY)  # only one probe at a time
    cd.success(KEY)
    assert cd.allow(KEY, POLICY) and cd.allow(KEY, POLICY)


def test_failed_probe_reopens_with_backoff_capped() -> None:
    clock = Clock()
    cd = Cooldowns(clock)
    cd.failure(KEY, POLICY)
    cd.failure(KEY, POLICY)
    seen = []
    for _ in range(4):
        seen.append(cd.remaining(KEY))
        clock.now += cd.remaining(KEY) + 0.01
        assert cd.allow(KEY, POLICY)
        assert cd.failure(KEY, POLICY)  # the probe failed: open again at once
    # The doubling stops at maxProbeIntervalSeconds (default 30), not at maxSeconds (35).
    assert seen == [10.0, 20.0, 30.0, 30.0]


def test_probe_interval_cap_is_separate_from_retry_after_cap() -> None:
    """Issue 19: failed probes doubled the cooldown up to the Retry-After cap (300 s by
    default), so a recovered target stayed out for minutes."""
    policy = compiled(policy={"cooldown": {"failureThreshold": 1, "seconds": 30}}).policy
    clock = Clock()
    cd = Cooldowns(clock)
    intervals = []
    for _ in range(6):
        cd.failure(KEY, policy)
        intervals.append(cd.remaining(KEY))
        clock.now += cd.remaining(KEY)
        assert cd.allow(KEY, policy)
    assert intervals == [30.0] * 6
    cd.success(KEY)
    assert cd.failure(KEY, policy, retry_after=200.0)  # the provider's word: up to maxSeconds
    assert cd.remaining(KEY) == 200.0


def test_outage_costs_a_bounded_number_of_probes_and_recovery_is_quick() -> None:
    """A target down 60 s under one request a second (defaults: threshold 3, 30 s, cap
    30 s) gets 3 failures plus one probe per interval, and is back within one interval."""
    policy = compiled().policy
    clock = Clock()
    cd = Cooldowns(clock)
    start, sent, back_at = clock.now, 0, None
    for second in range(200):
        clock.now = start + second
        if not cd.allow(KEY, policy):
            continue
        sent += 1
        if second < 60:
            cd.failure(KEY, policy)
        else:
            cd.success(KEY)
            back_at = back_at if back_at is not None else second
    assert sent - (200 - back_at) <= 3 + 2  # 3 to trip, ceil(60 / 30) probes
    assert back_at is not None and back_at - 60 <= 30


def test_success_resets_the_count() -> None:
    cd = Cooldowns(Clock())
    cd.failure(KEY, POLICY)
    cd.success(KEY)
    assert not cd.failure(KEY, POLICY)
    assert cd.allow(KEY, POLICY)


def test_retry_after_opens_at_once_for_that_long_capped() -> None:
    clock = Clock()
    cd = Cooldowns(clock)
    assert cd.failure(KEY, POLICY, retry_after=3.0)
    assert not cd.allow(KEY, POLICY)
    assert cd.remaining(KEY) == 3.0
    clock.now += 3.01
    assert cd.allow(KEY, POLICY)
    cd.success(KEY)
    assert cd.failure(KEY, POLICY, retry_after=1000.0)
    assert cd.remaining(KEY) == 35.0


def test_released_probe_lets_the_next_request_probe() -> None:
    clock = Clock()
    cd = Cooldowns(clock)
    cd.failure(KEY, POLICY)
    cd.failure(KEY, POLICY)
    clock.now += 11
    assert cd.allow(KEY, POLICY)
    cd.release(KEY)  # cancelled probe: no verdict
    assert cd.allow(KEY, POLICY)


def test_disabled_never_opens() -> None:
    policy = dataclasses.replace(POLICY, cooldown_enabled=False)
    cd = Cooldowns(Clock())
    for _ in range(10):
        assert not cd.failure(KEY, policy)
    assert cd.allow(KEY, policy)


def test_state_is_per_endpoint_and_target() -> None:
    cd = Cooldowns(Clock())
    other = ("team-a/chat", KEY[1])
    cd.failure(KEY, POLICY)
    cd.failure(KEY, POLICY)
    assert not cd.allow(KEY, POLICY)
    assert cd.allow(other, POLICY)


def test_remembers_whether_a_rate_limit_opened_it() -> None:
    clock = Clock()
    cd = Cooldowns(clock)
    assert cd.failure(KEY, POLICY, retry_after=5.0, rate_limited=True)  # a 429 opens at once
    assert cd.rate_limited(KEY)
    clock.now += 6
    assert cd.allow(KEY, POLICY)  # the probe
    assert cd.failure(KEY, POLICY)  # fails with a 5xx: reopened, now not for a rate limit
    assert not cd.rate_limited(KEY)
    cd.success(KEY)
    assert not cd.rate_limited(KEY)
