"""The replica's status report: what it holds (and never holds), and its wire shape."""

from __future__ import annotations

import json

import pytest

from switchyard_gateway.report import build
from switchyard_gateway.routing.cooldown import Cooldowns
from switchyard_schema import report as shape
from tests.unit.gateway.endpoints import compiled, target

POLICY = {"cooldown": {"failureThreshold": 1, "seconds": 10}}


def test_report_names_hash_and_cooling_targets_with_reason_and_since() -> None:
    ep = compiled(split=[target("a", 50), target("b", 50)], policy=POLICY)
    now = [100.0]
    cd = Cooldowns(clock=lambda: now[0], wall=lambda: 5000.0)
    a = ep.split[0]
    cd.failure((ep.key, a.identity), ep.policy, rate_limited=True)
    report = build("gw-0", {ep.key: ep}, cd.cooling(), 6000.0, 5.0)
    assert report.endpoints == {ep.key: shape.short_hash(ep.spec_hash)}
    assert report.cooling == {ep.key: {"a": shape.TargetCooling(5000.0, 5010.0, "rateLimited")}}
    assert shape.decode(shape.encode(report)) == report


def test_cooling_since_stays_at_the_first_opening_and_success_clears_it() -> None:
    ep = compiled(policy=POLICY)
    key = (ep.key, ep.split[0].identity)
    now, wall = [100.0], [5000.0]
    cd = Cooldowns(clock=lambda: now[0], wall=lambda: wall[0])
    cd.failure(key, ep.policy)
    now[0] += 11
    wall[0] += 11
    assert cd.allow(key, ep.policy)  # the probe
    cd.failure(key, ep.policy)  # fails: re-opens, same outage
    assert cd.cooling()[key].since == 5000.0
    assert cd.cooling()[key].reason == "failing"
    cd.success(key)
    assert cd.cooling() == {}


def test_report_holds_no_key_material_or_secret_names() -> None:
    ep = compiled(split=[target("a", 100, apiKey={"secretKeyRef": {"name": "prod-keys",
                                                                     "key": "sk-live"}})],
                  policy=POLICY)
    cd = Cooldowns()
    cd.failure((ep.key, ep.split[0].identity), ep.policy)
    text = shape.encode(build("gw-0", {ep.key: ep}, cd.cooling(), 1.0, 5.0))
    assert "prod-keys" not in text and "sk-live" not in text
    assert json.loads(text)["cooling"][ep.key]["a"][2] == "failing"


def test_an_a_b_arm_that_is_also_a_fallback_is_shown_under_both_names() -> None:
    ep = compiled(split=[target("a", 100, model="m")], fallbacks=[target("again", model="m")],
                  policy=POLICY)
    cd = Cooldowns()
    cd.failure((ep.key, ep.split[0].identity), ep.policy)
    report = build("gw-0", {ep.key: ep}, cd.cooling(), 1.0, 5.0)
    assert set(report.cooling[ep.key]) == {"a", "again"}


@pytest.mark.parametrize("text", [
    "", "[]", "{}", '{"replica":"r","heartbeat":1,"interval":1,"endpoints":[],"cooling":{}}',
    '{"replica":"r","heartbeat":1,"interval":1,"endpoints":{},'
    '"cooling":{"ns/e":{"a":[1,2,"bored"]}}}',
    '{"replica":"r","heartbeat":"x","interval":1,"endpoints":{},"cooling":{}}',
])
def test_a_malformed_report_is_refused_as_a_type(text: str) -> None:
    with pytest.raises(shape.InvalidReport):
        shape.decode(text)


def test_liveness_is_three_promised_intervals() -> None:
    report = shape.Report("r", 100.0, 5.0, {}, {})
    assert report.live(115.0)
    assert not report.live(115.1)


def test_each_worker_reports_under_its_own_name() -> None:
    """`--workers N`: every worker has its own store and cooldowns, so its own report."""
    from switchyard_gateway.settings import GatewaySettings
    from switchyard_gateway.workers import worker_settings

    shared = GatewaySettings(report_name="gw-0")
    assert [worker_settings(shared, i).report_name for i in range(2)] == ["gw-0-w0", "gw-0-w1"]
    assert worker_settings(GatewaySettings(), 1).report_name == ""
