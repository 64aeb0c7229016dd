"""The gateway in the cluster, end to end: `kubectl apply` to a request served.

Real parts only: the kube-apiserver and controller-manager of the e2e fixture, the operator
and the gateway as local processes on ServiceAccount tokens bound to docs/*-rbac.yaml,
fake OpenAI-compatible providers on loopback, and the official `openai` SDK as the client.
Waits poll with generous deadlines that only guard against hangs.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest

from switchyard_testing import stack
from switchyard_testing.background import BackgroundLoop
from switchyard_testing.cluster import Cluster
from switchyard_testing.controlplane import ControlPlane
from switchyard_testing.fakes import FakeOpenAI, Fault

T = TypeVar("T")
DEADLINE = 60.0


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = DEADLINE,
    context: Callable[[], str] = lambda: "",
) -> T:
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}\n{context()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def loop() -> Iterator[BackgroundLoop]:
    with BackgroundLoop() as background:
        yield background


@pytest.fixture(scope="module")
def fakes(loop: BackgroundLoop) -> Iterator[dict[str, FakeOpenAI]]:
    started = {name: loop.run(FakeOpenAI.start(name=name)) for name in ("a", "b", "fb")}
    yield started
    for fake in started.values():
        loop.run(fake.close())


@pytest.fixture(scope="module")
def accounts(cluster: Cluster) -> dict[str, Path]:
    home = cluster.create_namespace("e2e-sy-system")
    return {
        "operator": stack.bind_service_account(cluster, stack.OPERATOR_RBAC, home),
        "gateway": stack.bind_service_account(cluster, stack.GATEWAY_RBAC, home),
    }


@pytest.fixture
def other_namespace(cluster: Cluster) -> Iterator[str]:
    name = cluster.create_namespace("e2e-other")
    yield name
    cluster.delete_namespace(name, wait=False)


class System:
    """Operator + gateway watching two namespaces, and helpers to drive them."""

    def __init__(
        self,
        cluster: Cluster,
        fakes: dict[str, FakeOpenAI],
        loop: BackgroundLoop,
        namespace: str,
        other: str,
        accounts: dict[str, Path],
        log_dir: Path,
    ) -> None:
        self.cluster, self.fakes, self.loop = cluster, fakes, loop
        self.namespace, self.other = namespace, other
        self.operator = stack.operator(
            accounts["operator"],
            [namespace, other],
            log_dir,
            extra=["--allowed-base-url-hosts", "127.0.0.1"],
        )
        self.gateway = stack.gateway(
            accounts["gateway"], log_dir, namespaces=[namespace, other], default_namespace=namespace
        )
        self.client = openai.OpenAI(
            base_url=self.gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30
        )

    def logs(self) -> str:
        return (
            f"--- operator\n{self.operator.process.tail(30)}\n"
            f"--- gateway\n{self.gateway.process.tail(30)}"
        )

    def secret(self, value: str, namespace: str | None = None) -> None:
        self.cluster.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": "fake-key",
                        "namespace": namespace or self.namespace,
                        "labels": {"switchyard.dev/credential": "true"},
                    },
                    "stringData": {"api-key": value},
                }
            ]
        )

    def target(self, fake: str, weight: int | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": fake,
            "provider": "openai-compatible",
            "model": f"model-{fake}",
            "baseUrl": self.fakes[fake].base_url,
            "apiKey": {"secretKeyRef": {"name": "fake-key", "key": "api-key"}},
        }
        if weight is not None:
            spec["weight"] = weight
        return spec

    def endpoint(
        self, name: str, weights: dict[str, int], fallbacks: list[str], namespace: str | None = None
    ) -> None:
        self.cluster.apply(
            [
                {
                    "apiVersion": "switchyard.dev/v1alpha1",
                    "kind": "GatewayEndpoint",
                    "metadata": {"name": name, "namespace": namespace or self.namespace},
                    "spec": {
                        "trafficSplit": [self.target(f, w) for f, w in weights.items()],
                        "fallbacks": [
                            {**self.target(f), "name": f"{f}-fallback"} for f in fallbacks
                        ],
                        "policy": {
                            "attemptTimeoutSeconds": 5,
                            "requestTimeoutSeconds": 20,
                            "cooldown": {"failureThreshold": 2, "seconds": 60},
                        },
                    },
                }
            ]
        )

    def chat(self, model: str) -> tuple[int, dict[str, str]]:
        """(status, headers) of one chat completion through the gateway."""
        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
            raw.parse()
            return raw.status_code, dict(raw.headers)
        except openai.APIStatusError as exc:
            return exc.status_code, dict(exc.response.headers)

    def shares(self, model: str, n: int) -> collections.Counter[str]:
        served: collections.Counter[str] = collections.Counter()
        for _ in range(n):
            status, headers = self.chat(model)
            assert status == 200, (status, headers)
            served[headers["x-switchyard-target"]] += 1
        return served

    def serving(self, model: str, status: int = 200) -> Callable[[], bool]:
        return lambda: self.chat(model)[0] == status

    def configmap_hash(self, name: str) -> str:
        done = self.cluster.kubectl(
            "get",
            "configmap",
            f"gwe-{name}",
            "-n",
            self.namespace,
            "-o",
            "json",
            "--ignore-not-found",
        )
        if not done.stdout.strip():
            return ""
        return str(
            json.loads(done.stdout)["metadata"]["annotations"].get("switchyard.dev/spec-hash", "")
        )

    def metrics(self) -> str:
        return self.gateway.get("/metrics")[1].decode()


@pytest.fixture
def system(
    cluster: Cluster,
    fakes: dict[str, FakeOpenAI],
    loop: BackgroundLoop,
    namespace: str,
    other_namespace: str,
    accounts: dict[str, Path],
    tmp_path: Path,
) -> Iterator[System]:
    for fake in fakes.values():
        loop.call(fake.script.clear)
        loop.call(fake.requests.clear)
    sys_ = System(cluster, fakes, loop, namespace, other_namespace, accounts, tmp_path)
    sys_.secret("key-one")
    sys_.operator.start()
    sys_.gateway.start()
    try:
        sys_.gateway.wait_for("/readyz", timeout=DEADLINE)
        yield sys_
    finally:
        sys_.gateway.stop()
        sys_.operator.stop()


def test_apply_serve_reweight_failover_rotate_delete(system: System) -> None:
    s = system
    s.endpoint("chat", {"a": 50, "b": 50}, ["fb"])
    wait_for("chat served", s.serving("chat"), context=s.logs)

    shares = s.shares("chat", 200)
    assert set(shares) == {"a", "b"} and min(shares.values()) > 60, shares

    before = s.configmap_hash("chat")
    s.endpoint("chat", {"a": 90, "b": 10}, ["fb"])
    wait_for("new hash", lambda: s.configmap_hash("chat") not in ("", before), context=s.logs)
    time.sleep(1.0)  # propagation is measured in bench/, not asserted here
    shares = s.shares("chat", 200)
    assert shares["a"] > 150, shares

    # Break arm a: its share fails over to the fallback, never onto arm b.
    s.loop.call(s.fakes["a"].script.set_rates, {Fault.UNAVAILABLE: 1.0})
    shares = s.shares("chat", 100)
    assert shares["a"] == 0 and shares["fb-fallback"] > 60, shares
    assert shares["b"] < 30, shares
    s.loop.call(s.fakes["a"].script.clear)

    # Rotate the Secret: the next requests carry the new key.
    s.secret("key-two")
    s.loop.call(s.fakes["b"].requests.clear)

    def rotated() -> bool:
        s.chat("chat")
        return any(
            r.headers.get("Authorization") == "Bearer key-two" for r in list(s.fakes["b"].requests)
        )

    wait_for("rotated key used", rotated, context=s.logs)

    s.cluster.kubectl("delete", "gatewayendpoint", "chat", "-n", s.namespace)
    wait_for("chat gone", s.serving("chat", 404), context=s.logs)
    status, _ = s.chat("chat")
    assert status == 404


def test_corrupt_configmap_keeps_last_good_and_is_counted(system: System) -> None:
    s = system
    s.endpoint("chat", {"a": 100}, [])
    wait_for("chat served", s.serving("chat"), context=s.logs)
    patch = {"data": {"endpoint.json": "{not json"}}
    s.cluster.kubectl(
        "patch",
        "configmap",
        "gwe-chat",
        "-n",
        s.namespace,
        "--type",
        "merge",
        "-p",
        json.dumps(patch),
    )
    wait_for(
        "reject counted",
        lambda: (
            "reject" in s.metrics()
            and any(
                line.startswith("switchyard_config_")
                and "reject" in line
                and not line.endswith(" 0.0")
                for line in s.metrics().splitlines()
            )
        ),
        context=s.logs,
    )
    assert s.chat("chat")[0] == 200


def test_forged_configmap_is_ignored_and_bare_names_stay_home(system: System) -> None:
    s = system
    s.endpoint("chat", {"a": 100}, [])
    wait_for("chat served", s.serving("chat"), context=s.logs)
    good = s.cluster.kubectl("get", "configmap", "gwe-chat", "-n", s.namespace, "-o", "json")
    forged = json.loads(good.stdout)
    meta = forged["metadata"]
    forged["metadata"] = {"name": "gwe-forged", "namespace": s.namespace, "labels": meta["labels"]}
    forged["data"]["endpoint.json"] = forged["data"]["endpoint.json"].replace(
        '"name":"chat"', '"name":"forged"'
    )
    s.cluster.apply([forged])
    time.sleep(2.0)
    assert s.chat("forged")[0] == 404

    s.secret("key-one", namespace=s.other)
    s.endpoint("elsewhere", {"b": 100}, [], namespace=s.other)
    wait_for("elsewhere served", s.serving(f"{s.other}/elsewhere"), context=s.logs)
    assert s.chat("elsewhere")[0] == 404  # a bare name never leaves the default namespace


def test_apiserver_restart_during_traffic_loses_nothing(
    system: System, local_control_plane: ControlPlane
) -> None:
    s = system
    s.endpoint("chat", {"a": 50, "b": 50}, ["fb"])
    wait_for("chat served", s.serving("chat"), context=s.logs)
    outcomes: collections.Counter[int] = collections.Counter()
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            outcomes[s.chat("chat")[0]] += 1

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        local_control_plane.stop_apiserver()
        time.sleep(3.0)
        local_control_plane.start_apiserver()
        s.endpoint("chat", {"a": 1, "b": 99}, ["fb"])
        wait_for(
            "change after restart",
            lambda: s.shares("chat", 20)["b"] >= 18,
            timeout=90,
            context=s.logs,
        )
    finally:
        stop.set()
        thread.join(30)
    assert set(outcomes) == {200}, outcomes
    assert sum(outcomes.values()) > 20
