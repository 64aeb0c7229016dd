"""The e2e cluster behaves like a real one where the other e2e tests rely on it.

Garbage collection of owned objects, namespace deletion (which needs the namespace
controller's discovery of every API, the CRD's included), RBAC for ServiceAccount
kubeconfigs, and an API server restart that keeps every object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from switchyard_testing.cluster import Cluster
from switchyard_testing.controlplane import ControlPlane

ENDPOINT = """
apiVersion: switchyard.dev/v1alpha1
kind: GatewayEndpoint
metadata: {name: chat}
spec:
  trafficSplit:
  - {provider: openai, model: gpt-5, weight: 100, apiKey: {envVar: OPENAI_API_KEY}}
"""


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{check.__name__} still false after {timeout}s"
        time.sleep(0.2)


def test_owned_configmap_is_garbage_collected(cluster: Cluster, namespace: str) -> None:
    cluster.apply(ENDPOINT, namespace)
    owner = json.loads(cluster.kubectl("get", "gwe", "chat", "-n", namespace, "-o", "json").stdout)
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": "chat",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    child = {"name": "gwe-chat", "namespace": namespace, "ownerReferences": [ref]}
    cluster.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": child}])

    cluster.kubectl("delete", "gwe", "chat", "-n", namespace, "--wait=false")

    def configmap_gone() -> bool:
        got = cluster.kubectl("get", "cm", "gwe-chat", "-n", namespace, check=False)
        return "NotFound" in got.stderr

    # Against a cluster whose CRD was installed just now (SWITCHYARD_E2E_KUBECONFIG), the
    # garbage collector watches GatewayEndpoints only from its next discovery resync (every
    # 30s) and then retries the orphan with a backoff: about 45s, measured. The local
    # control plane installs the CRD before its garbage collector starts: about 2s.
    eventually(configmap_gone, timeout=90)


def test_deleted_namespace_goes_away_with_its_custom_resources(cluster: Cluster) -> None:
    name = cluster.create_namespace("e2e-delete")
    cluster.apply(ENDPOINT, name)

    cluster.delete_namespace(name, wait=False)

    def namespace_gone() -> bool:
        got = cluster.kubectl("get", "namespace", name, check=False)
        return "NotFound" in got.stderr

    eventually(namespace_gone, timeout=60)


def test_service_account_kubeconfig_has_only_its_rbac(cluster: Cluster, namespace: str) -> None:
    config = cluster.service_account_kubeconfig(namespace, "reader")

    def can_list() -> str:
        return cluster.kubectl(
            "auth",
            "can-i",
            "list",
            "configmaps",
            "-n",
            namespace,
            kubeconfig_path=config,
            check=False,
        ).stdout.strip()

    whoami = cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig_path=config).stdout
    username = json.loads(whoami)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{namespace}:reader"
    assert can_list() == "no"

    cluster.kubectl(
        "create", "role", "reader", "-n", namespace, "--verb=list", "--resource=configmaps"
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "-n",
        namespace,
        "--role=reader",
        f"--serviceaccount={namespace}:reader",
    )
    eventually(lambda: can_list() == "yes")


def test_restarted_apiserver_keeps_objects(
    local_control_plane: ControlPlane, namespace: str
) -> None:
    plane = local_control_plane
    plane.apply(ENDPOINT, namespace)
    started = time.monotonic()

    plane.restart_apiserver()

    assert time.monotonic() - started < 30
    assert plane.kubectl("get", "gwe", "-n", namespace, "-o", "name").stdout.split() == [
        "gatewayendpoint.switchyard.dev/chat"
    ]
