"""Shared cooldown: which peer windows a replica adopts (`routing/sharing.py`), how an
adopted breaker behaves (`Cooldowns.adopt`/`forget`), and the report watch (`peers.py`)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.peers import Peers
from switchyard_gateway.report import build
from switchyard_gateway.routing import sharing
from switchyard_gateway.routing.cooldown import BreakerKey, Cooldowns, Cooling
from switchyard_kube.client import Client, Connection
from switchyard_schema import report as shape
from tests.unit.gateway.endpoints import compiled, target

NOW = 10_000.0
GRACE = 1.0
EP = compiled(split=[target("a", 50), target("b", 50)], fallbacks=[target("fb")],
              policy={"cooldown": {"failureThreshold": 1, "seconds": 2, "maxSeconds": 60,
                                   "maxProbeIntervalSeconds": 30}})
A: BreakerKey = (EP.key, EP.split[0].identity)
ENDPOINTS = {EP.key: EP}


def report(replica: str, cooling: dict[str, shape.TargetCooling] | None = None,
           endpoint: CompiledEndpoint = EP, heartbeat: float = NOW) -> shape.Report:
    return shape.Report(replica, heartbeat, 5.0,
                        {endpoint.key: shape.short_hash(endpoint.spec_hash)},
                        {endpoint.key: cooling} if cooling else {})


def window(until: float, since: float = NOW - 5, reason: str = "failing") -> dict[
        str, shape.TargetCooling]:
    return {"a": shape.TargetCooling(since, until, reason)}


def plan(me: str, *reports: shape.Report, own: dict[BreakerKey, Cooling] | None = None,
         endpoints: dict[str, CompiledEndpoint] | None = None) -> sharing.Plan:
    return sharing.plan(me, reports, own or {}, endpoints or ENDPOINTS, NOW, GRACE)


def test_a_peers_open_window_is_adopted_until_its_end_plus_the_grace() -> None:
    got = plan("gw-b", report("gw-a", window(NOW + 2, reason="rateLimited")))
    assert got.adopt == {A: sharing.Adoption("gw-a", NOW - 5, NOW + 2 + GRACE, True)}
    assert got.reported == {A} and got.live == {"gw-a"}


def test_own_and_stale_reports_are_not_adopted() -> None:
    assert plan("gw-a", report("gw-a", window(NOW + 2))).adopt == {}
    gone = report("gw-a", window(NOW + 2), heartbeat=NOW - 16)  # 3 heartbeats of 5 s
    assert plan("gw-b", gone).adopt == {} and plan("gw-b", gone).live == set()


def test_a_window_that_ran_out_is_not_adopted_again() -> None:
    # The leader had no traffic to probe with: re-adopting its stale window would make
    # every follower probe once per interval.
    assert plan("gw-b", report("gw-a", window(NOW - GRACE - 0.1))).adopt == {}
    assert A in plan("gw-b", report("gw-a", window(NOW - GRACE + 0.1))).adopt


def test_the_latest_window_leads_and_its_replica_does_not_follow_the_others() -> None:
    mine = {A: Cooling(NOW - 5, NOW + 3, "failing")}
    assert plan("gw-b", report("gw-a", window(NOW + 2)), own=mine).adopt == {}
    got = plan("gw-b", report("gw-a", window(NOW + 4)), own=mine).adopt
    assert got[A].leader == "gw-a" and got[A].until == NOW + 4 + GRACE
    # Two peers: the later window leads, whichever replica opened first.
    got = plan("gw-c", report("gw-a", window(NOW + 4, since=NOW - 9)),
               report("gw-b", window(NOW + 6, since=NOW - 1))).adopt
    assert got[A].leader == "gw-b" and got[A].since == NOW - 1


def test_equal_windows_are_led_by_the_greater_replica_name_on_both_sides() -> None:
    until = NOW + 2
    on_a = plan("gw-a", report("gw-b", window(until)), own={A: Cooling(NOW, until, "failing")})
    on_b = plan("gw-b", report("gw-a", window(until)), own={A: Cooling(NOW, until, "failing")})
    assert A in on_a.adopt and on_b.adopt == {}


def test_followers_are_staggered_by_rank_so_one_probes_when_the_leader_does_not() -> None:
    peers = [report("gw-a", window(NOW + 2)), report("gw-b"), report("gw-c")]
    untils = [plan(me, *[r for r in peers if r.replica != me]).adopt[A].until
              for me in ("gw-b", "gw-c")]
    assert untils == [NOW + 2 + GRACE, NOW + 2 + 2 * GRACE]


def test_an_until_beyond_the_policys_longest_window_is_clamped() -> None:
    got = plan("gw-b", report("gw-a", window(NOW + 10**9)))
    assert got.adopt[A].until == NOW + 60 + GRACE  # maxSeconds 60 > maxProbeInterval 30


def test_times_that_are_not_finite_numbers_are_no_window() -> None:
    for until, since in ((float("nan"), NOW), (float("inf"), NOW), (NOW + 2, float("nan"))):
        assert plan("gw-b", report("gw-a", window(until, since=since))).adopt == {}


def test_unknown_endpoints_targets_other_specs_and_disabled_cooldowns_are_ignored() -> None:
    other = compiled(name="other", split=[target("a", 100)])
    assert plan("gw-b", report("gw-a", window(NOW + 2), endpoint=other)).adopt == {}
    renamed = {"ghost": shape.TargetCooling(NOW, NOW + 2, "failing")}
    assert plan("gw-b", report("gw-a", renamed)).adopt == {}
    edited = compiled(split=[target("a", 100)], policy={"cooldown": {"failureThreshold": 1}})
    assert plan("gw-b", report("gw-a", window(NOW + 2)),
                endpoints={EP.key: edited}).adopt == {}  # the peer serves another spec
    off = compiled(split=[target("a", 50), target("b", 50)], fallbacks=[target("fb")],
                   policy={"cooldown": {"enabled": False}})
    assert plan("gw-b", report("gw-a", window(NOW + 2), endpoint=off),
                endpoints={EP.key: off}).adopt == {}


class Clocks:
    def __init__(self) -> None:
        self.mono, self.wall = 500.0, NOW

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def test_an_adopted_breaker_skips_until_its_end_then_lets_one_probe_through() -> None:
    t = Clocks()
    cd = Cooldowns(clock=lambda: t.mono, wall=lambda: t.wall)
    assert cd.adopt(A, NOW - 5, NOW + 3, rate_limited=False)
    assert not cd.adopt(A, NOW - 5, NOW + 3, rate_limited=False)  # counted once
    assert not cd.allow(A, EP.policy) and cd.cooling() == {}  # adopted: not reported
    assert cd.adopted() == {A}
    t.advance(3.01)
    assert cd.allow(A, EP.policy) and not cd.allow(A, EP.policy)  # one probe
    cd.failure(A, EP.policy)  # it fails: now this replica's own window, and reported
    assert cd.cooling()[A].since == NOW - 5 and cd.adopted() == set()


def test_adoption_never_shortens_a_window_and_forget_closes_only_adopted_ones() -> None:
    t = Clocks()
    cd = Cooldowns(clock=lambda: t.mono, wall=lambda: t.wall)
    cd.failure(A, EP.policy)  # own window: 2 s
    cd.forget(A)
    assert not cd.allow(A, EP.policy)  # own windows are this replica's to close
    cd.adopt(A, NOW, NOW + 1, rate_limited=False)  # a peer leads now ...
    assert cd.remaining(A) == 2.0 and cd.cooling() == {}  # ... not before 2 s, unreported
    t.advance(2.0)
    assert cd.allow(A, EP.policy)  # the probe is in flight ...
    cd.adopt(A, NOW, NOW + 9, rate_limited=False)
    cd.forget(A)
    assert cd.adopted() == {A}  # ... and has the last word
    cd.success(A)
    assert cd.allow(A, EP.policy)


def configmap(rep: shape.Report | None, name: str | None = None, text: str = "") -> dict[
        str, Any]:
    data = shape.encode(rep) if rep is not None else text
    return {"metadata": {"name": name or shape.report_name(rep.replica if rep else "x")},
            "data": {shape.DATA_KEY: data}}


def peers(me: str, cd: Cooldowns, now: list[float]) -> tuple[Peers, list[int]]:
    adopted: list[int] = []
    watcher = Peers(Client(Connection("https://127.0.0.1:1")), "switchyard-system", me, cd,
                    lambda: ENDPOINTS, 0.2, clock=lambda: now[0],
                    on_adopt=lambda: adopted.append(1))
    return watcher, adopted


def test_peers_adopt_on_events_and_close_when_the_leader_reports_the_target_healthy() -> None:
    t = Clocks()
    cd = Cooldowns(clock=lambda: t.mono, wall=lambda: t.wall)
    watcher, adopted = peers("gw-b", cd, [NOW])
    asyncio.run(watcher._replace([configmap(report("gw-a", window(NOW + 2)))]))
    assert cd.adopted() == {A} and adopted == [1]
    asyncio.run(watcher._event("MODIFIED", configmap(report("gw-a"))))  # its probe passed
    assert cd.adopted() == set() and cd.allow(A, EP.policy)


def test_peers_keep_the_window_of_a_leader_that_died_and_skip_bad_reports() -> None:
    t = Clocks()
    cd = Cooldowns(clock=lambda: t.mono, wall=lambda: t.wall)
    watcher, _ = peers("gw-b", cd, [NOW])
    asyncio.run(watcher._event("ADDED", configmap(report("gw-a", window(NOW + 2)))))
    asyncio.run(watcher._event("DELETED", configmap(report("gw-a"))))  # its Pod went
    assert cd.adopted() == {A} and not cd.allow(A, EP.policy)  # runs to its end
    asyncio.run(watcher._event("ADDED", configmap(None, "switchyard-gateway-report-gw-c",
                                                  text="{not json")))
    forged = configmap(report("gw-z", window(NOW + 50)), name="switchyard-gateway-report-gw-c")
    asyncio.run(watcher._event("ADDED", forged))  # a report under another replica's name
    mine = configmap(report("gw-b", window(NOW + 50)))
    asyncio.run(watcher._event("ADDED", mine))  # its own report is not a peer's
    assert watcher.invalid == 2
    assert cd.remaining(A) == 2.0 + sharing.grace_for(0.2)


def test_three_replicas_probe_a_failing_target_once_per_window_between_them() -> None:
    """In-process: three replicas exchange reports (`report.build`) every 0.2 s while each
    takes a request every 0.05 s for a target that keeps failing; count the probes."""
    t = Clocks()
    names = ("gw-a", "gw-b", "gw-c")
    cds = {n: Cooldowns(clock=lambda: t.mono, wall=lambda: t.wall) for n in names}
    sent: list[float] = []
    opened = None
    for step in range(int(20 / 0.05)):
        for name in names:
            if cds[name].allow(A, EP.policy):
                sent.append(t.wall)
                cds[name].failure(A, EP.policy)
                opened = opened or t.wall
        if step % 4 == 0:  # every report interval, everyone sees everyone's report
            reports = [build(n, ENDPOINTS, cds[n].cooling(), t.wall, 5.0) for n in names]
            for name in names:
                got = sharing.plan(name, reports, cds[name].cooling(), ENDPOINTS, t.wall,
                                   sharing.grace_for(0.2))
                for key, a in got.adopt.items():
                    cds[name].adopt(key, a.since, a.until, a.rate_limited)
        t.advance(0.05)
    assert opened is not None
    # Before the first report: each replica's own threshold (1) failure; then one probe
    # per window (2, 4, 8 s ... doubling) between the three of them.
    after = [s for s in sent if s > opened + 0.25]
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert len(after) <= 4 and all(gap >= 1.9 for gap in gaps), (sent, gaps)
