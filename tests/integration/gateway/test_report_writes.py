"""The status report's API writes against a loopback API server: shape, owner and bounds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.report import Owner, Reporter, ReportSettings
from switchyard_gateway.routing.cooldown import Cooldowns
from switchyard_kube import client as kubeclient
from switchyard_schema import report as shape
from tests.unit.gateway.endpoints import compiled

PATH = "/api/v1/namespaces/switchyard-system/configmaps"


class Api:
    """Stores one ConfigMap by PUT/POST; `fail` answers 500 to every write."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.seen: list[tuple[str, str]] = []
        self.fail = False

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path))
        if self.fail:
            return web.json_response({"reason": "InternalError"}, status=500)
        body = await request.json()
        name = body["metadata"]["name"]
        if request.method == "PUT" and name not in self.objects:
            return web.json_response({"reason": "NotFound"}, status=404)
        self.objects[name] = body
        return web.json_response(body, status=201 if request.method == "POST" else 200)


@pytest.fixture
async def api() -> AsyncIterator[tuple[Api, kubeclient.Client]]:
    fake = Api()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with kubeclient.Client(kubeclient.Connection(
                server=str(server.make_url("")).rstrip("/"))) as client:
            yield fake, client
    finally:
        await server.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reporter(client: kubeclient.Client, endpoints: dict[str, CompiledEndpoint],
              clock: Clock, cooldowns: Cooldowns | None = None,
              interval: float = 1.0) -> Reporter:
    settings = ReportSettings("switchyard-system", "gw-0", Owner("gw-0", "uid-1"),
                              interval=interval, heartbeat=5.0)
    return Reporter(client, settings, lambda: endpoints,
                    (cooldowns or Cooldowns()).cooling, clock)


async def test_first_write_creates_the_owned_labelled_configmap_then_replaces_it(
        api: tuple[Api, kubeclient.Client]) -> None:
    fake, client = api
    ep = compiled()
    clock = Clock()
    reporter = _reporter(client, {ep.key: ep}, clock)
    assert await reporter.tick()
    assert fake.seen == [("PUT", f"{PATH}/switchyard-gateway-report-gw-0"), ("POST", PATH)]
    obj = fake.objects["switchyard-gateway-report-gw-0"]
    assert obj["metadata"]["labels"] == {shape.REPORT_LABEL: "true"}
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "gw-0", "uid": "uid-1"}]
    report = shape.decode(obj["data"][shape.DATA_KEY])
    assert report.endpoints == {ep.key: shape.short_hash(ep.spec_hash)}
    assert report.heartbeat == 1000.0
    clock.now += 5.0
    assert await reporter.tick()  # the heartbeat: one PUT, no create
    assert fake.seen[2:] == [("PUT", f"{PATH}/switchyard-gateway-report-gw-0")]


async def test_unchanged_reports_are_written_only_at_the_heartbeat(
        api: tuple[Api, kubeclient.Client]) -> None:
    _, client = api
    clock = Clock()
    reporter = _reporter(client, {}, clock)
    assert await reporter.tick()
    for _ in range(49):  # 4.9 s of ticks with nothing new
        clock.now += 0.1
        assert not await reporter.tick()
    clock.now += 0.1
    assert await reporter.tick()
    assert reporter.counts.writes == 2


async def test_a_change_is_written_at_the_next_tick(
        api: tuple[Api, kubeclient.Client]) -> None:
    fake, client = api
    ep = compiled()
    clock = Clock()
    cooldowns = Cooldowns()
    # Like the store, a change swaps the whole mapping (the reporter relies on it).
    current: list[dict[str, CompiledEndpoint]] = [{}]
    reporter = Reporter(client, ReportSettings("switchyard-system", "gw-0", heartbeat=5.0),
                        lambda: current[0], cooldowns.cooling, clock)
    await reporter.tick()
    current[0] = {ep.key: ep}
    clock.now += 0.1
    assert await reporter.tick()
    cooldowns.failure((ep.key, ep.split[0].identity), compiled(
        policy={"cooldown": {"failureThreshold": 1}}).policy)
    clock.now += 0.1
    assert await reporter.tick()
    report = shape.decode(fake.objects["switchyard-gateway-report-gw-0"]["data"]["report.json"])
    assert set(report.cooling[ep.key]) == {"primary"}


async def test_writes_are_bounded_by_the_interval_under_constant_change(
        api: tuple[Api, kubeclient.Client]) -> None:
    """A config churning every millisecond still costs one write per interval."""
    _, client = api
    current: list[dict[str, CompiledEndpoint]] = [{}]
    reporter = Reporter(client, ReportSettings("switchyard-system", "gw-0", interval=0.1),
                        lambda: current[0], Cooldowns().cooling)
    eps = [compiled(name=f"e{i}") for i in range(400)]

    async def churn() -> None:
        for ep in eps:
            current[0] = {**current[0], ep.key: ep}
            await asyncio.sleep(0.001)

    task = asyncio.create_task(reporter.run())
    started = asyncio.get_running_loop().time()
    await churn()
    elapsed = asyncio.get_running_loop().time() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert reporter.counts.writes <= elapsed / 0.1 + 2
    assert reporter.counts.writes >= 2


async def test_a_failing_api_server_is_counted_and_retried_not_fatal(
        api: tuple[Api, kubeclient.Client]) -> None:
    fake, client = api
    fake.fail = True
    clock = Clock()
    reporter = _reporter(client, {}, clock)
    assert not await reporter.tick()
    assert reporter.counts.failures == 1
    fake.fail = False
    clock.now += 0.1
    assert await reporter.tick()  # nothing was written: the next tick writes
    assert json.loads(fake.objects["switchyard-gateway-report-gw-0"]["data"]["report.json"])


class CountingSnapshot(dict[str, CompiledEndpoint]):
    """A store snapshot that counts how often the report walked it."""

    walks = 0

    def items(self) -> Any:
        self.walks += 1
        return super().items()


async def test_an_unchanged_snapshot_is_not_walked_again_before_the_heartbeat(
        api: tuple[Api, kubeclient.Client]) -> None:
    """The walk costs ~24 ms at 10,000 endpoints: once per change, not once per tick."""
    _, client = api
    ep = compiled()
    snapshot = CountingSnapshot({ep.key: ep})
    clock = Clock()
    reporter = Reporter(client, ReportSettings("switchyard-system", "gw-0", heartbeat=5.0),
                        lambda: snapshot, Cooldowns().cooling, clock)
    assert await reporter.tick()
    for _ in range(30):  # 6 s of ticks
        clock.now += 0.2
        await reporter.tick()
    assert snapshot.walks == 2  # the first write and the heartbeat at 5 s


async def test_a_reopened_window_is_written_at_the_next_tick_not_the_heartbeat(
        api: tuple[Api, kubeclient.Client]) -> None:
    """A failed probe re-opens the window with the same `since` and reason: only `until`
    moves, and the other replicas time their adopted windows by it (shared cooldown), so
    it must not wait for the heartbeat (5 s) to be published."""
    fake, client = api
    ep = compiled(policy={"cooldown": {"failureThreshold": 1, "seconds": 1}})
    key = (ep.key, ep.split[0].identity)
    clock = Clock()
    cooldowns = Cooldowns(clock=clock, wall=clock)
    reporter = _reporter(client, {ep.key: ep}, clock, cooldowns)
    cooldowns.failure(key, ep.policy)
    assert await reporter.tick()
    clock.now += 1.0
    assert cooldowns.allow(key, ep.policy)  # the probe ...
    cooldowns.failure(key, ep.policy)  # ... fails: the next window, 2 s
    clock.now += 0.2
    assert await reporter.tick()
    report = shape.decode(fake.objects["switchyard-gateway-report-gw-0"]["data"]["report.json"])
    assert report.cooling[ep.key]["primary"] == shape.TargetCooling(1000.0, 1003.0, "failing")
