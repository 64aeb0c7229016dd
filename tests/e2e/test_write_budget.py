"""API writes per new endpoint, counted by the real API server (issue 18: writes stay bounded).

The operator runs with `--gateway-reports-namespace` and one gateway replica reports, so
`Ready` means served. Twenty endpoints are applied at once; once all are `Ready=True`
(reason `Served`), the API server's own audit log (`ControlPlane.AUDIT_POLICY`) says what
the operator's ServiceAccount wrote. The budget per new endpoint: its ConfigMap created,
one status write, one Event, and nothing else: no Kopf bookkeeping PATCH on the endpoint,
no `NotServedYet` status before the `Served` one, no Accepted/RefsResolved Events beside
`Rendered`. Needs the local control plane (its audit log); skipped on an external cluster.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard_testing import stack
from switchyard_testing.cluster import Cluster
from switchyard_testing.controlplane import ControlPlane
from tests.e2e.support import DEADLINE, wait_for

COUNT = 20
REPORT = ["--report-interval", "0.2", "--report-heartbeat", "0.5"]


@pytest.fixture
def plane(cluster: Cluster) -> ControlPlane:
    if not isinstance(cluster, ControlPlane):
        pytest.skip("needs the local control plane's audit log")
    return cluster


@pytest.fixture
def running(plane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[str]:
    """Operator (reading reports) and one reporting gateway replica; yields the operator's
    user name."""
    home = plane.create_namespace("e2e-budget-home")
    operator_config = stack.bind_service_account(plane, stack.OPERATOR_RBAC, home)
    gateway_config = stack.bind_service_account(plane, stack.GATEWAY_RBAC, home)
    operator = stack.operator(operator_config, [namespace], tmp_path, extra=[
        "--allowed-base-url-hosts", "127.0.0.1", "--gateway-reports-namespace", home])
    gateway = stack.gateway(gateway_config, tmp_path, namespaces=[namespace],
                            default_namespace=namespace,
                            extra=["--report-name", "gw-a", "--report-namespace", home, *REPORT])
    operator.start()
    gateway.start()
    try:
        gateway.wait_for("/readyz", timeout=DEADLINE)
        yield f"system:serviceaccount:{home}:switchyard-operator"
    finally:
        gateway.stop()
        operator.stop()
        plane.delete_namespace(home, wait=False)


def _endpoint(name: str, namespace: str) -> dict[str, object]:
    return {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"task": "chat", "trafficSplit": [
                {"name": "a", "provider": "openai-compatible", "model": "a",
                 "baseUrl": "http://127.0.0.1:9/v1", "weight": 100}]}}


def _served(plane: ControlPlane, namespace: str) -> int:
    listed = json.loads(plane.kubectl("get", "gatewayendpoints", "-n", namespace, "-o",
                                      "json").stdout)
    return sum(1 for item in listed["items"] if any(
        c.get("type") == "Ready" and c.get("reason") == "Served"
        for c in (item.get("status") or {}).get("conditions") or []))


def test_a_new_endpoint_costs_one_configmap_one_status_and_one_event(
        plane: ControlPlane, namespace: str, running: str) -> None:
    plane.apply([_endpoint(f"budget-{i}", namespace) for i in range(COUNT)])
    wait_for("every endpoint Ready=True (Served)", lambda: _served(plane, namespace) == COUNT,
             timeout=DEADLINE)
    time.sleep(1.5)  # a late write (Kopf patches after the handler) would land by now
    writes: collections.Counter[tuple[str, str]] = collections.Counter()
    for event in plane.audit_events(running):
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != namespace or event.get("stage") != "ResponseComplete":
            continue
        if event.get("verb") in ("create", "update", "patch", "delete"):
            resource = ref.get("resource", "") + (
                f"/{ref['subresource']}" if ref.get("subresource") else "")
            writes[(event["verb"], resource)] += 1
    assert writes == {("create", "configmaps"): COUNT,
                      ("patch", "gatewayendpoints/status"): COUNT,
                      ("create", "events"): COUNT}, writes
