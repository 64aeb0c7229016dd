"""Honest status on the real API server: `Ready` means served, `Degraded` means a target is
failing (issue 18).

The operator runs with `--gateway-reports-namespace`; the gateway replicas report every
0.2 s with a 0.5 s heartbeat, so a stopped replica stops counting after 1.5 s. Both run on
ServiceAccount tokens bound to docs/*-rbac.yaml, so the report's RBAC is proven enough.

The three-replica tests prove the shared cooldown (docs/routing.md) on the failing
upstream's own request log: with `SHARED_COOLDOWN = ["--shared-cooldown", "off"]` they fail.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from switchyard_testing import stack
from switchyard_testing.background import BackgroundLoop
from switchyard_testing.cluster import Cluster
from switchyard_testing.fakes import FakeOpenAI
from switchyard_testing.fakes.script import Fault
from tests.e2e.support import DEADLINE, System, wait_for

REPORT = ["--report-interval", "0.2", "--report-heartbeat", "0.5"]
#: Shared cooldown stays at its default (on); ["--shared-cooldown", "off"] shows what the
#: three-replica test catches without it.
SHARED_COOLDOWN: list[str] = []


class Served(System):
    """`System` with the operator reading reports and gateway replicas that report."""

    def __init__(self, cluster: Cluster, fakes: dict[str, FakeOpenAI], loop: BackgroundLoop,
                 namespace: str, other: str, home: str, accounts: dict[str, Path],
                 log_dir: Path) -> None:
        super().__init__(cluster, fakes, loop, namespace, other, accounts, log_dir)
        self.home, self.accounts, self.log_dir = home, accounts, log_dir
        self.operator = stack.operator(
            accounts["operator"], [namespace, other], log_dir,
            extra=["--allowed-base-url-hosts", "127.0.0.1",
                   "--gateway-reports-namespace", home])
        self.gateway = self.replica("gw-a")
        self.replicas = [self.gateway]
        self.client = openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="unused",
                                    max_retries=0, timeout=30)

    def replica(self, name: str, port: int | None = None) -> stack.Service:
        return stack.gateway(
            self.accounts["gateway"], self.log_dir, namespaces=[self.namespace, self.other],
            default_namespace=self.namespace, port=port,
            extra=["--report-name", name, "--report-namespace", self.home, *REPORT,
                   *SHARED_COOLDOWN])

    def status(self, name: str) -> dict[str, Any]:
        done = self.cluster.kubectl("get", "gwe", name, "-n", self.namespace, "-o", "json")
        return dict(json.loads(done.stdout).get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for cond in self.status(name).get("conditions") or []:
            if cond.get("type") == type_:
                return dict(cond)
        return {}

    def generation(self, name: str) -> int:
        done = self.cluster.kubectl("get", "gwe", name, "-n", self.namespace, "-o", "json")
        return int(json.loads(done.stdout)["metadata"]["generation"])


@pytest.fixture
def served(cluster: Cluster, fakes: dict[str, FakeOpenAI], background_loop: BackgroundLoop,
           namespace: str, other_namespace: str, tmp_path: Path) -> Iterator[Served]:
    home = cluster.create_namespace("e2e-status-home")
    accounts = {"operator": stack.bind_service_account(cluster, stack.OPERATOR_RBAC, home),
                "gateway": stack.bind_service_account(cluster, stack.GATEWAY_RBAC, home)}
    for fake in fakes.values():
        background_loop.call(fake.script.clear)
        background_loop.call(fake.requests.clear)
    system = Served(cluster, fakes, background_loop, namespace, other_namespace, home,
                    accounts, tmp_path)
    system.secret("key-one")
    system.operator.start()
    system.gateway.start()
    try:
        system.gateway.wait_for("/readyz", timeout=DEADLINE)
        yield system
    finally:
        system.gateway.stop()
        system.operator.stop()
        cluster.delete_namespace(home, wait=False)


def test_an_edit_is_not_ready_while_no_gateway_serves_it_then_ready_once_one_does(
        served: Served) -> None:
    s = served
    s.endpoint("chat", {"a": 100}, ["fb"])
    wait_for("Ready=True, served", lambda: s.condition("chat", "Ready").get("reason") == "Served",
             context=s.logs)
    assert s.status("chat")["servingReplicas"] == 1
    port = s.gateway.port
    s.gateway.stop()
    s.endpoint("chat", {"a": 50, "b": 50}, ["fb"])
    generation = s.generation("chat")

    def not_served() -> dict[str, Any] | None:
        cond = s.condition("chat", "Ready")
        ok = cond.get("observedGeneration") == generation and cond.get("status") == "False"
        return cond if ok else None

    cond = wait_for("Ready=False for the edit", not_served, context=s.logs)
    # The operator caught up (observedGeneration), and says the edit is not served: first
    # by the stopped replica (its heartbeat still counts), then by no replica at all.
    assert cond["reason"] in ("NotServedYet", "NoGatewayReplica"), cond
    cond = wait_for("the stopped replica stops counting",
                    lambda: (c := not_served()) and c["reason"] == "NoGatewayReplica" and c,
                    timeout=5, context=s.logs)
    assert "no gateway replica reports" in cond["message"]
    time.sleep(2.0)  # nothing changes while no replica serves
    assert s.condition("chat", "Ready")["status"] == "False"
    started = time.monotonic()
    s.gateway = s.replica("gw-b", port=port).start()
    s.gateway.wait_for("/readyz", timeout=DEADLINE)
    # `kubectl wait` returns once the change is served.
    s.cluster.kubectl("wait", "--for=condition=Ready", "gwe/chat", "-n", s.namespace,
                      "--timeout=60s")
    status = s.status("chat")
    assert status["servingReplicas"] == 1
    ready = s.condition("chat", "Ready")
    assert (ready["reason"], ready["observedGeneration"]) == ("Served", generation)
    # A fresh client: the old one's pooled connection went with the stopped replica.
    s.client = openai.OpenAI(base_url=s.gateway.url + "/v1", api_key="unused", max_retries=0)
    assert s.chat("chat")[0] == 200
    # API writes are bounded: at most one per report interval (0.2 s) since the start.
    writes = stack.metric_value(s.metrics(), "switchyard_status_report_writes_total",
                                outcome="ok")
    assert 1 <= writes <= (time.monotonic() - started) / 0.2 + 1, writes
    assert stack.metric_value(s.metrics(), "switchyard_status_report_writes_total",
                              outcome="failed") == 0  # the documented RBAC is enough


def test_a_failing_target_is_degraded_within_two_seconds_and_recovery_clears_it(
        served: Served) -> None:
    s = served
    s.cluster.apply([{
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
        "metadata": {"name": "flaky", "namespace": s.namespace},
        "spec": {"trafficSplit": [s.target("a", 100)],
                 "fallbacks": [{**s.target("fb"), "name": "fb-fallback"}],
                 "policy": {"cooldown": {"failureThreshold": 2, "seconds": 1}}}}])
    wait_for("Ready=True", lambda: s.condition("flaky", "Ready").get("reason") == "Served",
             context=s.logs)
    assert s.condition("flaky", "Degraded")["status"] == "False"
    s.loop.call(s.fakes["a"].script.set_rates, {Fault.SERVER_ERROR: 1.0})
    for _ in range(2):  # the fallback answers; the second 500 opens a's cooldown
        assert s.chat("flaky")[0] == 200
    tripped = time.monotonic()
    cond = wait_for("Degraded=True",
                    lambda: (c := s.condition("flaky", "Degraded")).get("status") == "True"
                    and c, timeout=10, context=s.logs)
    assert time.monotonic() - tripped < 2.0
    assert cond["reason"] == "TargetsCoolingDown"
    assert cond["message"].startswith("targets cooling down: a (failing since ")
    assert "gw-a" in cond["message"] and "key-one" not in json.dumps(s.status("flaky"))
    health = {t["name"]: t for t in s.status("flaky")["targetHealth"]}
    assert health["a"]["state"] == "CoolingDown" and health["a"]["reason"] == "failing"
    assert health["fb-fallback"]["state"] == "Healthy"
    assert s.condition("flaky", "Ready")["status"] == "True"  # served, though degraded
    s.loop.call(s.fakes["a"].script.clear)

    def recovered() -> bool:
        s.chat("flaky")  # after the 1 s window one of these is a's probe, and succeeds
        return s.condition("flaky", "Degraded").get("status") == "False"

    wait_for("Degraded=False after recovery", recovered, timeout=20, context=s.logs)
    assert {t["state"] for t in s.status("flaky")["targetHealth"]} == {"Healthy"}


class Driver:
    """Chat requests round-robin over the `active` replicas (indexes), from a thread,
    until stopped: the replicas always have traffic, as behind a Service."""

    def __init__(self, s: Served, urls: list[str], model: str) -> None:
        self.clients = [openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0,
                                      timeout=30) for url in urls]
        self.model, self.active = model, [0]
        self.served: list[tuple[int, int, str]] = []  # (replica index, status, target)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Driver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=35)

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            active = self.active
            index = active[turn % len(active)]
            turn += 1
            try:
                raw = self.clients[index].chat.completions.with_raw_response.create(
                    model=self.model, messages=[{"role": "user", "content": "hi"}])
                raw.parse()
                self.served.append((index, raw.status_code,
                                    raw.headers.get("x-switchyard-target", "")))
            except openai.APIError as exc:
                self.served.append((index, getattr(exc, "status_code", 0) or 0, ""))
            time.sleep(0.02)


def _requests_at(s: Served, fake: str) -> list[float]:
    """When the fake upstream received each request (its own log, monotonic)."""
    async def snapshot() -> list[float]:
        return [r.at for r in s.fakes[fake].requests]
    return s.loop.run(snapshot())


def _adopted(replica: stack.Service) -> float:
    return stack.metric_value(replica.admin_get("/metrics")[1].decode(),
                              "switchyard_cooldowns_adopted_total")


@pytest.fixture
def trio(served: Served) -> Iterator[Served]:
    """`served` with two more replicas, gw-b and gw-c, reporting into the same namespace."""
    extra = [served.replica(name).start() for name in ("gw-b", "gw-c")]
    try:
        for replica in extra:
            replica.wait_for("/readyz", timeout=DEADLINE)
        served.replicas = [served.gateway, *extra]
        yield served
    finally:
        for replica in extra:
            replica.stop()


WINDOW = 1.0  # the shared endpoint's first cooldown window; later ones double up to 2 s


def _shared_endpoint(s: Served) -> None:
    """Endpoint `shared`: target a, then a healthy fallback; cooldown after 2 failures,
    windows of 1 s doubling to 2 s; no same-target retries (each probe is one request)."""
    s.cluster.apply([{
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
        "metadata": {"name": "shared", "namespace": s.namespace},
        "spec": {"trafficSplit": [s.target("a", 100)],
                 "fallbacks": [{**s.target("fb"), "name": "fb-fallback"}],
                 "policy": {"cooldown": {"failureThreshold": 2, "seconds": int(WINDOW),
                                        "maxProbeIntervalSeconds": 2},
                            "retry": {"maxRetries": 0}}}}])
    wait_for("served by the three replicas",
             lambda: s.status("shared").get("servingReplicas") == 3, context=s.logs)
    assert s.condition("shared", "Ready")["message"] == "served by 3 gateway replica(s)"


def _fail_behind_gw_a(s: Served, traffic: Driver) -> None:
    """Make a fail while only gw-a has traffic: Degraded within 2 s of the first failure;
    then wait (up to 5 s, not asserted) for the others to adopt gw-a's window."""
    wait_for("a serves through gw-a", lambda: any(t == "a" for *_, t in traffic.served))
    s.loop.call(s.fakes["a"].script.set_rates, {Fault.SERVER_ERROR: 1.0})
    failing_from = time.monotonic()
    wait_for("a failing twice behind gw-a",
             lambda: len([t for t in _requests_at(s, "a") if t > failing_from]) >= 2)
    first_failure = next(t for t in _requests_at(s, "a") if t > failing_from)
    cond = wait_for("Degraded=True",
                    lambda: (c := s.condition("shared", "Degraded")).get("status")
                    == "True" and c, timeout=10, context=s.logs)
    assert time.monotonic() - first_failure < 2.0
    assert cond["message"].startswith("targets cooling down: a (failing since ")
    # Waited for, not asserted here, so that without sharing the upstream's log is what
    # fails the test.
    end = time.monotonic() + 5
    while min(_adopted(r) for r in s.replicas[1:]) < 1 and time.monotonic() < end:
        time.sleep(0.1)


def _one_probe_per_window(s: Served, since: float) -> list[float]:
    """The failing upstream's log since `since`: at most one request per window."""
    probes = [t for t in _requests_at(s, "a") if t > since]
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert all(gap >= WINDOW * 0.95 for gap in gaps), gaps
    return probes


def test_three_replicas_share_a_cooldown_one_probe_per_window_and_recover_together(
        trio: Served) -> None:
    """Issue 18, shared cooldown: a target failing behind one replica is Degraded within
    2 s; the other replicas adopt its window, so across the three the failing upstream
    receives at most one request per cooldown window (its own request log); once it
    recovers, Degraded clears and every replica routes to it again."""
    s = trio
    _shared_endpoint(s)
    with Driver(s, [r.url for r in s.replicas], "shared") as traffic:
        _fail_behind_gw_a(s, traffic)
        traffic.active = [0, 1, 2]
        shared_from = time.monotonic()
        time.sleep(8.0)
        # All three had traffic: every request went to the fallback without reaching a,
        # but for one probe per window (1 s, then 2 s) between them.
        probes = _one_probe_per_window(s, shared_from)
        assert 2 <= len(probes) <= 8 / WINDOW, probes
        assert {i for i, status, _ in traffic.served if status == 200} == {0, 1, 2}
        assert all(_adopted(r) >= 1 for r in s.replicas[1:])
        s.loop.call(s.fakes["a"].script.clear)
        recovered_from = len(traffic.served)
        wait_for("Degraded=False after recovery",
                 lambda: s.condition("shared", "Degraded").get("status") == "False",
                 timeout=20, context=s.logs)

        def all_route_to_a() -> bool:
            after = traffic.served[recovered_from:]
            return {i for i, status, t in after[-30:] if status == 200 and t == "a"} == {0, 1, 2}

        wait_for("every replica routes to a again", all_route_to_a, timeout=10,
                 context=s.logs)
    assert {t["state"] for t in s.status("shared")["targetHealth"]} == {"Healthy"}
    # A stopped replica stops counting (its heartbeat expires); the two left serve it.
    s.replicas[2].stop()
    ready = wait_for("served by the two left", lambda: (c := s.condition("shared", "Ready"))
                     .get("message") == "served by 2 gateway replica(s)" and c,
                     timeout=10, context=s.logs)
    assert ready["status"] == "True" and s.status("shared")["servingReplicas"] == 2


def test_with_three_replicas_an_edit_made_while_none_runs_is_ready_once_all_serve_it(
        trio: Served) -> None:
    """Issue 18 with three gateway processes: all stopped -> an edit leaves Ready=False,
    the reason saying no replica serves it; three replicas back -> `kubectl wait` returns
    once every one of them serves the edit."""
    s = trio
    s.endpoint("chat", {"a": 100}, ["fb"])
    wait_for("served by the three replicas",
             lambda: s.status("chat").get("servingReplicas") == 3, context=s.logs)
    for replica in s.replicas:
        replica.stop()
    s.endpoint("chat", {"a": 50, "b": 50}, ["fb"])
    generation = s.generation("chat")

    def no_replica() -> dict[str, Any] | None:
        cond = s.condition("chat", "Ready")
        ok = (cond.get("observedGeneration"), cond.get("status"), cond.get("reason")) == (
            generation, "False", "NoGatewayReplica")
        return cond if ok else None

    cond = wait_for("Ready=False: no replica serves the edit", no_replica, timeout=10,
                    context=s.logs)
    assert "no gateway replica reports" in cond["message"]
    assert s.status("chat").get("servingReplicas", 0) == 0
    back = [s.replica(name) for name in ("gw-d", "gw-e", "gw-f")]
    try:
        for replica in back:
            replica.start()
        for replica in back:
            replica.wait_for("/readyz", timeout=DEADLINE)
        s.cluster.kubectl("wait", "--for=condition=Ready", "gwe/chat", "-n", s.namespace,
                          "--timeout=60s")
        # Ready may turn True with the first replica's report: wait for all three.
        wait_for("served by the three new replicas",
                 lambda: s.status("chat").get("servingReplicas") == 3, timeout=10,
                 context=s.logs)
        ready = s.condition("chat", "Ready")
        assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
            "True", "Served", generation)
        assert ready["message"] == "served by 3 gateway replica(s)"
    finally:
        for replica in back:
            replica.stop()


def test_when_the_replica_that_leads_a_cooldown_dies_the_others_take_over_one_probe_each_window(
        trio: Served) -> None:
    """The leader (gw-a, which opened the window) is stopped while the target still fails:
    the followers keep its window to the end, then one of them probes and leads; the
    upstream still sees at most one request per window, and recovery reaches both."""
    s = trio
    _shared_endpoint(s)
    with Driver(s, [r.url for r in s.replicas], "shared") as traffic:
        _fail_behind_gw_a(s, traffic)
        traffic.active = [0, 1, 2]
        time.sleep(2.0)
        traffic.active = [1, 2]
        s.replicas[0].stop()
        dead_from = time.monotonic()
        time.sleep(8.0)
        probes = _one_probe_per_window(s, dead_from - 2.0)
        assert [t for t in probes if t > dead_from], probes  # the survivors probed
        s.loop.call(s.fakes["a"].script.clear)
        recovered_from = len(traffic.served)
        wait_for("Degraded=False after recovery",
                 lambda: s.condition("shared", "Degraded").get("status") == "False",
                 timeout=20, context=s.logs)

        def both_route_to_a() -> bool:
            after = traffic.served[recovered_from:]
            return {i for i, status, t in after[-20:] if status == 200 and t == "a"} == {1, 2}

        wait_for("both survivors route to a again", both_route_to_a, timeout=10,
                 context=s.logs)
