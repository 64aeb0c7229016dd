"""Shared cooldown (issue 18): which breakers this replica holds open on another's word.

Called by `peers.py`, which watches the other replicas' status reports
(`switchyard_schema.report`) and applies the result to the local `Cooldowns` on every
report event and every report interval. Pure: the reports, this replica's own open
breakers, the served endpoints and the time in; the breakers to adopt out. Must not: read
a report this replica wrote, trust a target name the served spec does not have, or let a
report hold a breaker open longer than the endpoint's policy allows.

How it works, and why:

- One window, one prober. For each (endpoint, target) the open window with the latest
  `until` leads (ties: the greater replica name). Every other replica adopts it: its local
  breaker stays open until the leader's `until` plus a grace, so the leader's probe at
  `until` (re-opening the window, or clearing it) reaches the others through its next
  report before their adopted window ends. The latest `until` rather than the earliest
  `since` leads because it is the freshest verdict: the replica that probed last and
  failed holds it, so when the replica that opened the outage has no traffic left (or
  died), the one that probed in its place takes over, and the others follow the new
  window instead of probing beside it.
- Followers are staggered: a follower's grace is `grace * (1 + rank)`, its rank among the
  live replicas other than the leader (by name). When the leader does not probe (no
  traffic), the first follower probes; if that fails, its new window leads before the
  second follower's grace has run out. One probe per window either way.
- Adopted windows are not reported (`Cooldowns.cooling` leaves them out): a replica
  reports only what it observed itself, otherwise replicas would echo each other's
  cooldowns forever and no window would ever close.
- A window that has already run out (grace included) is not adopted: a leader without
  traffic keeps reporting its stale window, and re-adopting it would make every follower
  probe once per interval.
- Trust: reports come only from the gateway's own namespace (tenants cannot write there),
  but each is still checked: a target is matched by name only when the reporting replica
  serves the same spec hash of the endpoint (a renamed target is another target), only on
  endpoints whose policy enables cooldown, and an `until` beyond the policy's longest
  window (`cooldown_max_seconds`, `cooldown_max_probe_interval`) is clamped to it, and a
  time that is not a finite number is no window at all.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.routing.cooldown import BreakerKey, Cooling
from switchyard_schema import report as shape

#: The grace after a leader's `until`, in report intervals (and at least `MIN_GRACE`
#: seconds): the leader's probe waits for a request, its report for the next tick (one
#: interval), then the write and the watch event.
GRACE_INTERVALS = 3.0
MIN_GRACE = 1.0


def grace_for(interval: float) -> float:
    """The grace of an adopted window for replicas reporting every `interval` seconds."""
    return max(MIN_GRACE, GRACE_INTERVALS * interval)


@dataclasses.dataclass(frozen=True, slots=True)
class Adoption:
    """A peer's window this replica follows."""

    leader: str  # the replica whose window it is
    since: float  # wall-clock: when the outage began there
    until: float  # wall-clock: when this replica may probe (grace included)
    rate_limited: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """What the peers' reports say now."""

    adopt: dict[BreakerKey, Adoption]
    reported: frozenset[BreakerKey]  # keys some live peer reports cooling (led or not)
    live: frozenset[str]  # live peer replicas


@dataclasses.dataclass(frozen=True, slots=True)
class _Window:
    until: float
    replica: str
    since: float
    reason: str


def plan(me: str, reports: Iterable[shape.Report], own: Mapping[BreakerKey, Cooling],
         endpoints: Mapping[str, CompiledEndpoint], now: float, grace: float) -> Plan:
    """The windows to adopt: per breaker, the leading live peer's, unless this replica's
    own window leads (see the module docstring)."""
    live = [r for r in reports if r.replica != me and r.live(now)]
    lead: dict[BreakerKey, _Window] = {}
    for report in live:
        for key, window in _windows(report, endpoints, now):
            best = lead.get(key)
            if best is None or (window.until, window.replica) > (best.until, best.replica):
                lead[key] = window
    names = sorted({r.replica for r in live} | {me})
    adopt: dict[BreakerKey, Adoption] = {}
    for key, window in lead.items():
        mine = own.get(key)
        if mine is not None and (mine.until, me) > (window.until, window.replica):
            continue  # this replica's window leads: it probes, the others follow it
        rank = [n for n in names if n != window.replica].index(me)
        until = window.until + grace * (1 + rank)
        if until <= now:
            continue  # run out: the leader had nothing to probe with
        adopt[key] = Adoption(window.replica, window.since, until,
                              window.reason == "rateLimited")
    return Plan(adopt, frozenset(lead), frozenset(r.replica for r in live))


def _windows(report: shape.Report, endpoints: Mapping[str, CompiledEndpoint],
             now: float) -> Iterable[tuple[BreakerKey, _Window]]:
    """The report's open windows this replica can match to a target it serves."""
    for key, targets in report.cooling.items():
        endpoint = endpoints.get(key)
        if endpoint is None or not endpoint.policy.cooldown_enabled:
            continue
        if report.endpoints.get(key) != shape.short_hash(endpoint.spec_hash):
            continue
        policy = endpoint.policy
        limit = now + max(policy.cooldown_max_seconds, policy.cooldown_max_probe_interval)
        identities = {t.name: t.identity for t in (*endpoint.split, *endpoint.fallbacks)}
        for name, state in targets.items():
            identity = identities.get(name)
            # JSON lets NaN and Infinity through `float()`; neither is a window.
            if identity is not None and math.isfinite(state.until + state.since):
                yield (key, identity), _Window(min(state.until, limit), report.replica,
                                               state.since, state.reason)
