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

from switchyard_testing.controlplane import ControlPlane
from switchyard_testing.fakes import Fault
from tests.e2e.support import System, wait_for


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
