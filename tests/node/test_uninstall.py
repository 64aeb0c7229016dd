"""`helm uninstall` leaves nothing of the release behind on a real node: no pod, no object
of the release in any namespace, no cluster-wide RBAC. Runs last (file order): it removes
the release the other node tests share.

The operator's leader-election Lease is made by the operator at run time, not by Helm: the
leader makes its Pod the Lease's owner, so the garbage collector removes the Lease once the
last operator pod is gone."""

from __future__ import annotations

import json

from switchyard_testing.node import Node
from tests.node import support
from tests.node.support import NAMESPACE, RELEASE, Release

# What every namespace holds without any release in it.
_NAMESPACE_DEFAULTS = {"configmap/kube-root-ca.crt", "serviceaccount/default"}
_LEASE = "lease/switchyard-operator"


def _everything(node: Node, namespaced: bool, *args: str) -> set[str]:
    kinds = node.kubectl("api-resources", "--verbs=list", f"--namespaced={str(namespaced).lower()}",
                         "-o", "name").stdout.split()
    kinds = [k for k in kinds if k not in ("events", "events.events.k8s.io")]
    out = node.kubectl("get", ",".join(kinds), *args, "-o", "json").stdout
    return {f"{i['kind'].lower()}/{i['metadata']['name']}" for i in json.loads(out)["items"]}


def _uninstall(node: Node, release: Release) -> None:
    release.uninstall()
    support.wait_for(lambda: not support.pods(node, NAMESPACE, "app.kubernetes.io/instance="
                                              + RELEASE), 120, "the release's pods to go")


def test_uninstall_leaves_no_operator_lease(node: Node, release: Release) -> None:
    assert release.manifest()
    _uninstall(node, release)
    support.wait_for(lambda: _LEASE not in _everything(node, True, "-n", NAMESPACE), 60,
                     "the garbage collector to remove the Lease with its Pod")


def test_uninstall_leaves_nothing_of_the_release(node: Node, release: Release) -> None:
    _uninstall(node, release)  # a no-op when the test above ran
    selector = f"app.kubernetes.io/instance={RELEASE}"
    assert _everything(node, True, "-A", "-l", selector) == set()
    assert _everything(node, False, "-l", selector) == set()
    left = _everything(node, True, "-n", NAMESPACE) - _NAMESPACE_DEFAULTS
    assert left == set(), left
    listed = support.helm(node, "list", "-A", "-q").stdout.split()
    assert RELEASE not in listed
