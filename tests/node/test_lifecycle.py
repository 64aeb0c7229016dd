"""The chart's lifecycle under traffic on a real node: a rolling `helm upgrade` fails no
request; a second operator replica takes over within the Lease duration when the leader's
pod is deleted, and edits made meanwhile converge; a SIGKILLed gateway pod fails only its
in-flight requests, the Service drops it and its replacement serves."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from switchyard_testing.node import Node
from tests.node import support
from tests.node.support import MODEL, NAMESPACE, Release, SteadyTraffic

LEASE = "switchyard-operator"
LEASE_SECONDS = 15  # the chart's operator.leaderElection.leaseDurationSeconds


def test_rolling_upgrade_under_steady_traffic_fails_nothing(
    node: Node, release: Release, team: None
) -> None:
    """Clients as users run them (the OpenAI SDK's default 2 retries) see no failure."""
    before = {p["metadata"]["name"] for p in release.ready("gateway")}
    traffic = SteadyTraffic(node, seconds=45, model=MODEL, threads=3, retries=2)
    time.sleep(5)
    release.upgrade("--set-string=gateway.podAnnotations.rollout=1")  # --wait: rolled out
    after = {p["metadata"]["name"] for p in release.ready("gateway")}
    result = traffic.result()
    assert not before & after, (before, after)  # every gateway pod was replaced
    assert len(after) == 2
    assert not result.get("failed"), result
    assert sum(result["served"].values()) > 100, result


@pytest.mark.xfail(strict=False, reason=(
    "keep-alive race, narrowed: a draining gateway now answers with `Connection: close`, "
    "but an idle pooled connection unused through the whole drain can still meet the "
    "final close as a request goes out on it (was 1 of ~10,000 in 4 of 5 runs)"))
def test_rolling_upgrade_fails_nothing_even_without_client_retries(
    node: Node, release: Release, team: None
) -> None:
    traffic = SteadyTraffic(node, seconds=45, model=MODEL, threads=3, retries=0)
    time.sleep(5)
    release.upgrade("--set-string=gateway.podAnnotations.rollout=2")
    result = traffic.result()
    assert sum(result["served"].values()) > 100, result
    assert not result.get("failed"), result


def _lease_holder(node: Node) -> str:
    """The leader's pod: the chart makes the pod's name the leader-election identity."""
    out = node.kubectl("-n", NAMESPACE, "get", "lease", LEASE, "-o", "json", check=False)
    if out.returncode != 0:
        return ""
    spec: dict[str, Any] = json.loads(out.stdout)["spec"]
    return str(spec.get("holderIdentity") or "")


def test_operator_leader_handover_within_lease_and_edits_converge(
    node: Node, release: Release, team: None
) -> None:
    release.upgrade("--set=operator.replicas=2")
    support.wait_for(lambda: len(release.ready("operator")) == 2, 120, "two operator pods")
    support.wait_for(lambda: bool(_lease_holder(node)), 60, "a leader")
    leader_pod = _lease_holder(node)
    assert leader_pod in {p["metadata"]["name"] for p in release.pods("operator")}
    node.kubectl("-n", NAMESPACE, "delete", "pod", leader_pod, "--wait=false")
    deleted = time.monotonic()
    # An edit while the leader goes: only gpt5 in the split from now on.
    endpoint = support.example()
    endpoint["spec"]["trafficSplit"] = [
        {**t, "weight": 100} for t in endpoint["spec"]["trafficSplit"] if t["name"] == "gpt5"
    ]
    node.apply([endpoint])
    support.wait_for(lambda: _lease_holder(node) not in ("", leader_pod),
                     LEASE_SECONDS + 5, "another operator to lead", step=0.2)
    handover = time.monotonic() - deleted
    assert handover <= LEASE_SECONDS, handover
    print(f"leader {leader_pod} deleted: another operator led after {handover:.1f}s")
    support.wait_for(lambda: support.run_client(node, "count", "5", MODEL).get("served")
                     == {"gpt5": 5}, 60, "the edit to reach the gateways")
    support.applied(node, support.example())
    release.upgrade("--set=operator.replicas=1")


def _endpoint_ready(node: Node, ip: str) -> bool | None:
    out = node.kubectl("-n", NAMESPACE, "get", "endpointslices", "-l",
                       "kubernetes.io/service-name=switchyard-gateway", "-o", "json").stdout
    for item in json.loads(out)["items"]:
        for endpoint in item.get("endpoints") or []:
            if ip in endpoint["addresses"]:
                return bool(endpoint["conditions"].get("ready"))
    return None


def test_sigkill_of_a_gateway_pod_fails_only_its_in_flight_requests(
    node: Node, release: Release, team: None
) -> None:
    threads = 4
    victim = release.ready("gateway")[0]
    ip = victim["status"]["podIP"]
    container_id = victim["status"]["containerStatuses"][0]["containerID"].split("://")[1]
    tasks = node.namespaces.run([*node.ctr, "tasks", "ls"]).stdout.splitlines()
    (pid,) = [int(line.split()[1]) for line in tasks if line.startswith(container_id)]
    traffic = SteadyTraffic(node, seconds=40, model=MODEL, threads=threads)
    time.sleep(8)
    os.kill(pid, signal.SIGKILL)
    support.wait_for(lambda: _endpoint_ready(node, ip) is False, 20,
                     "the Service to drop the killed pod", step=0.1)
    support.wait_for(lambda: _endpoint_ready(node, ip) is True, 90,
                     "the replacement to be Ready", step=0.5)
    result = traffic.result()
    failed = sum(result.get("failed", {}).values())
    # Each client thread has one request in flight at a time: at most `threads` were on
    # the killed pod when it died; every other request was served.
    assert failed <= threads, result
    assert sum(result["served"].values()) > 50, result
    (restarted,) = [p for p in release.pods("gateway") if p["status"].get("podIP") == ip]
    assert restarted["status"]["containerStatuses"][0]["restartCount"] >= 1
    served = support.run_client(node, "count", "5", MODEL, f"http://{ip}:8080/v1")
    assert sum(served.get("served", {}).values()) == 5, served
    print(f"SIGKILL under {threads} threads: {failed} in-flight failures, {result}")
