"""Per-target circuit breaker: a target that keeps failing is skipped for a while.

State is keyed by (endpoint key, target identity), so it survives config swaps that keep
the target, and an A/B arm that is also a fallback shares one state. States:

- closed: requests flow; consecutive failures are counted and a success resets the count.
- open: after `failure_threshold` consecutive failures the target is skipped until
  `open_until`. Two limits, kept apart on purpose:
  - the probe interval, `seconds * 2**(trips-1)` for consecutive trips (a failed probe is
    a trip), capped at `max_probe_interval` (default 30 s): the gateway's own guess of
    how long an outage lasts. The cap is what brings a recovered target back within one
    probe interval; without it the doubling reached minutes and traffic stayed on the
    fallback long after the primary recovered (issue 19).
  - the provider's Retry-After, capped at `max_seconds` (default 300 s): the provider said
    when to come back. A failure carrying it opens the breaker at once, below the
    threshold; when the threshold trips too, the longer of the two.
  An outage of T seconds therefore costs the failing target at most `failure_threshold`
  failed requests plus one probe per interval: with the defaults, 3 + ceil(T / 30).
- half-open: after `open_until`, exactly one request (the probe) is let through; others
  keep skipping. The probe's success closes the breaker; its failure opens it again with
  the next interval.

Each state also remembers why the breaker last opened: `rate_limited` is True when the
failure that opened it was a rate limit (429). The router reads it for a skipped target,
so that a request whose candidates are all out because of rate limits (some tried now,
some cooling down from earlier 429s) is answered 429, not 502.

A skipped target is not an attempt (nothing was sent). The clock is injected so tests
drive the state machine without sleeping. Single event loop: no locks needed.

`cooling()` lists the open breakers with when (wall clock) they opened, until when and
why, for the replica's status report (`report.py`); it holds no key material, only target
identities.

Shared cooldown (`sharing.py`, issue 18): `adopt()` opens a breaker on another replica's
word, until that replica's `until` plus a grace, and `forget()` closes it again when that
replica's probe succeeded. An adopted breaker is not in `cooling()` (only what this replica
observed itself is reported; otherwise replicas would echo each other's cooldowns
forever); once its window passes, the usual half-open probe goes from here, and a failure
then makes the breaker this replica's own again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from switchyard_gateway.config.compiled import CompiledPolicy

BreakerKey = tuple[str, tuple[str, str, str, str]]


@dataclasses.dataclass(slots=True)
class _State:
    failures: int = 0
    trips: int = 0
    open_until: float = 0.0
    probing: bool = False
    rate_limited: bool = False
    since: float = 0.0  # wall-clock time the breaker first opened in this outage
    until: float = 0.0  # wall-clock `open_until`, to the millisecond (as the report has it)
    adopted: bool = False  # the open window is a peer's (`adopt`), not observed here


@dataclasses.dataclass(frozen=True, slots=True)
class Cooling:
    """One open (or half-open) breaker, as the status report shows it."""

    since: float  # wall-clock seconds
    until: float  # wall-clock seconds when the next probe may go (past: due or in flight)
    reason: str  # "rateLimited" or "failing"


class Cooldowns:
    """The breakers of every target the gateway has seen fail."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._states: dict[BreakerKey, _State] = {}

    def cooling(self) -> dict[BreakerKey, Cooling]:
        """Every breaker this replica opened itself and that is not closed, with since
        when, until when and why (for the report); adopted ones are left out."""
        return {
            key: Cooling(state.since, state.until,
                         "rateLimited" if state.rate_limited else "failing")
            for key, state in self._states.items()
            if state.open_until != 0.0 and not state.adopted
        }

    def adopt(self, key: BreakerKey, since: float, until: float, rate_limited: bool) -> bool:
        """Hold the breaker open until wall-clock `until` on a peer's word (`sharing.py`
        decided that the peer leads); never shortens a window already open here. A probe
        in flight stays in flight. True when the breaker was not adopted before."""
        state = self._states.setdefault(key, _State())
        fresh = not state.adopted
        open_until = self._clock() + (until - self._wall())
        state.open_until = max(state.open_until, open_until)
        state.until = round(max(state.until, until), 3)
        state.since, state.rate_limited, state.adopted = since, rate_limited, True
        state.failures = 0
        return fresh

    def forget(self, key: BreakerKey) -> None:
        """The peer whose window this replica followed reports the target healthy again:
        close an adopted breaker (one this replica opened itself, or a probe in flight,
        is left to its own verdict)."""
        state = self._states.get(key)
        if state is not None and state.adopted and not state.probing:
            del self._states[key]

    def adopted(self) -> set[BreakerKey]:
        """The breakers held open on a peer's word."""
        return {key for key, state in self._states.items() if state.adopted}

    def allow(self, key: BreakerKey, policy: CompiledPolicy) -> bool:
        """May a request go to this target now? Claims the probe slot when half-open."""
        if not policy.cooldown_enabled:
            return True
        state = self._states.get(key)
        if state is None or state.open_until == 0.0:
            return True
        if self._clock() < state.open_until or state.probing:
            return False
        state.probing = True
        return True

    def claimable(self, key: BreakerKey, within: float) -> bool:
        """Will this target let a request through `within` seconds from now, as far as
        is known now? (A same-target retry waits only when it will be let through.)"""
        state = self._states.get(key)
        if state is None or state.open_until == 0.0:
            return True
        return not state.probing and state.open_until <= self._clock() + within

    def rate_limited(self, key: BreakerKey) -> bool:
        """True when the target's breaker last opened on a rate limit (429)."""
        state = self._states.get(key)
        return state is not None and state.rate_limited

    def remaining(self, key: BreakerKey) -> float:
        """Seconds until the target may be probed again (0 when not open)."""
        state = self._states.get(key)
        if state is None:
            return 0.0
        return max(0.0, state.open_until - self._clock())

    def success(self, key: BreakerKey) -> None:
        """The target answered: close its breaker and forget it."""
        self._states.pop(key, None)

    def release(self, key: BreakerKey) -> None:
        """The probe ended without a verdict on the target (cancelled, caller fault)."""
        state = self._states.get(key)
        if state is not None:
            state.probing = False

    def failure(self, key: BreakerKey, policy: CompiledPolicy,
                retry_after: float | None = None, rate_limited: bool = False) -> bool:
        """Count a failure; returns True when the breaker (re)opened.

        `rate_limited`: the failure was a 429; remembered as the reason when it opens.
        """
        if not policy.cooldown_enabled:
            return False
        state = self._states.setdefault(key, _State())
        state.failures += 1
        was_probe, state.probing = state.probing, False
        tripped = was_probe or state.failures >= policy.cooldown_failure_threshold
        if not (tripped or retry_after):
            return False
        seconds = min(retry_after or 0.0, policy.cooldown_max_seconds)
        if tripped:
            state.trips += 1
            interval = policy.cooldown_seconds * 2 ** min(state.trips - 1, 16)
            seconds = max(seconds, min(interval, policy.cooldown_max_probe_interval))
            state.failures = 0
        wall = self._wall()
        if state.open_until == 0.0:
            state.since = round(wall, 3)
        state.open_until = self._clock() + seconds
        state.until = round(wall + seconds, 3)
        state.rate_limited = rate_limited
        state.adopted = False  # observed here: this replica's own, and reported
        return True
