"""`served.assess`: Ready means every live replica serves the current spec; Degraded means
some live replica has a target cooling down."""

from __future__ import annotations

from switchyard_operator import served
from switchyard_schema import report as shape

KEY = "team/chat"
HASH = "sha256:" + "ab" * 32
OLD = "sha256:" + "cd" * 32
NOW = 10_000.0


def _report(replica: str, spec_hash: str | None = HASH, heartbeat: float = NOW,
            cooling: dict[str, shape.TargetCooling] | None = None) -> shape.Report:
    endpoints = {KEY: shape.short_hash(spec_hash)} if spec_hash else {}
    return shape.Report(replica, heartbeat, 1.0, endpoints, {KEY: cooling} if cooling else {})


def test_no_replica_reporting_is_not_ready_and_says_so() -> None:
    out = served.assess([], KEY, HASH, ["a"], NOW)
    assert (out.ready.status, out.ready.reason) == ("False", served.NO_REPLICA)
    assert "no gateway replica reports" in out.ready.message
    assert (out.serving, out.live) == (0, 0)


def test_a_replica_gone_quiet_stops_counting_after_three_intervals() -> None:
    stale = _report("gw-old", heartbeat=NOW - 3.1)
    out = served.assess([stale, _report("gw-1")], KEY, HASH, ["a"], NOW)
    assert out.ready.status == "True" and (out.serving, out.live) == (1, 1)
    assert served.assess([stale], KEY, HASH, ["a"], NOW).ready.reason == served.NO_REPLICA


def test_ready_only_when_every_live_replica_serves_the_current_spec() -> None:
    reports = [_report("gw-0"), _report("gw-1", OLD), _report("gw-2", None)]
    out = served.assess(reports, KEY, HASH, ["a"], NOW)
    assert (out.ready.status, out.ready.reason) == ("False", served.NOT_SERVED)
    assert out.ready.message == ("2 of 3 gateway replicas do not serve the current spec yet: "
                                 "gw-1 (an older spec), gw-2 (not served)")
    assert out.serving == 1
    ok = served.assess([_report("gw-0"), _report("gw-1")], KEY, HASH, ["a"], NOW)
    assert (ok.ready.status, ok.ready.message) == ("True", "served by 2 gateway replica(s)")


def test_degraded_names_cooling_targets_reasons_and_replicas() -> None:
    cooling = {"b": shape.TargetCooling(NOW - 60, NOW + 10, "failing")}
    out = served.assess([_report("gw-0", cooling=cooling), _report("gw-1")], KEY, HASH,
                        ["a", "b"], NOW)
    assert (out.degraded.status, out.degraded.reason) == ("True", served.COOLING)
    assert out.degraded.message == (
        "targets cooling down: b (failing since 1970-01-01T02:45:40Z on gw-0)")
    assert out.targets == [
        {"name": "a", "state": "Healthy"},
        {"name": "b", "state": "CoolingDown", "reason": "failing",
         "since": "1970-01-01T02:45:40Z", "replicas": 1}]
    assert out.ready.status == "True"  # served, though degraded


def test_recovery_clears_degraded_and_a_stale_replica_does_not_keep_it() -> None:
    cooling = {"a": shape.TargetCooling(NOW - 60, NOW + 10, "rateLimited")}
    gone = _report("gw-gone", heartbeat=NOW - 10, cooling=cooling)
    out = served.assess([gone, _report("gw-0")], KEY, HASH, ["a"], NOW)
    assert (out.degraded.status, out.degraded.reason) == ("False", served.HEALTHY)
    assert out.targets == [{"name": "a", "state": "Healthy"}]


def test_messages_name_at_most_five_replicas() -> None:
    reports = [_report(f"gw-{i}", OLD) for i in range(8)]
    out = served.assess(reports, KEY, HASH, [], NOW)
    assert out.ready.message.endswith("gw-4 (an older spec) and 3 more")
