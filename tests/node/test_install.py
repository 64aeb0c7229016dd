"""`helm install` of charts/switchyard on a real node: the operator and both gateway pods
become Ready through their real probes, run as non-root on a read-only root filesystem, and
their ServiceAccounts can do exactly what the chart's RBAC grants (`kubectl auth can-i`)."""

from __future__ import annotations

import re
import time
from typing import Any

from switchyard_testing.node import Node
from tests.node import support
from tests.node.support import NAMESPACE, Release

# What every authenticated user may do (system:basic-user, system:discovery), not the chart's.
_DEFAULT_RESOURCES = {
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
    "selfsubjectreviews.authentication.k8s.io",
}
_ROW = re.compile(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$")

Rule = tuple[str, str, str]  # (resource.group, resourceNames, verb)


def _lease_holder(node: Node) -> str:
    done = node.kubectl("-n", NAMESPACE, "get", "lease", "switchyard-operator", "-o",
                        "jsonpath={.spec.holderIdentity}", check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def test_install_makes_every_pod_ready_non_root_read_only(release: Release, node: Node) -> None:
    operators, gateways = release.ready("operator"), release.ready("gateway")
    assert len(operators) == 1 and len(gateways) == 2
    # Ready is not enough: the operator answers its probe while it waits for the Lease, so
    # it must also lead and keep running (as uid 65532 with no passwd entry, kopf's
    # getpass.getuser() crashed it right after it took the Lease).
    support.wait_for(lambda: _lease_holder(node) == operators[0]["metadata"]["name"], 60,
                     "the operator to lead")
    time.sleep(5)
    for pod in release.pods("operator") + release.pods("gateway"):
        restarts = pod["status"]["containerStatuses"][0]["restartCount"]
        assert restarts == 0, (pod["metadata"]["name"], restarts)
    for pod in operators + gateways:
        name = pod["metadata"]["name"]
        assert pod["spec"]["containers"][0]["image"].startswith(support.IMAGE_REPOSITORY)
        assert all(s["ready"] for s in pod["status"]["containerStatuses"]), name
        probe = (
            "import os\n"
            "print(os.getuid(), os.getgid())\n"
            "try:\n    open('/probe', 'w')\nexcept OSError as e:\n    print(e.errno)\n"
            "open('/tmp/probe', 'w').write('ok')\n"
        )
        out = support.exec_in(node, NAMESPACE, name, "python", "-c", probe).stdout.split()
        assert out == ["65532", "65532", "30"], (name, out)  # 30: EROFS


def test_service_accounts_have_exactly_the_charts_rbac(release: Release, node: Node) -> None:
    manifest = release.manifest()
    for account in _service_accounts(manifest):
        for namespace in (NAMESPACE, "default"):
            granted = _can_i_list(node, account, namespace)
            expected = _chart_rules(manifest, account, namespace)
            assert granted == expected, (account, namespace, granted ^ expected)
    # A few plain questions, as an operator of the cluster would ask them.
    gateway = f"system:serviceaccount:{NAMESPACE}:switchyard-gateway"
    for verb, resource in (("create", "pods"), ("delete", "configmaps"), ("update", "secrets")):
        done = node.kubectl("auth", "can-i", verb, resource, f"--as={gateway}", "-A",
                            check=False)
        assert done.stdout.strip() == "no", (verb, resource)


def _service_accounts(manifest: list[dict[str, Any]]) -> list[str]:
    names = [d["metadata"]["name"] for d in manifest if d["kind"] == "ServiceAccount"]
    assert len(names) == 2, names
    return names


def _can_i_list(node: Node, account: str, namespace: str) -> set[Rule]:
    out = node.kubectl("auth", "can-i", "--list", "-n", namespace,
                       f"--as=system:serviceaccount:{NAMESPACE}:{account}").stdout
    rules: set[Rule] = set()
    for line in out.splitlines()[1:]:
        match = _ROW.match(line)
        if not match or not match.group(1) or match.group(1) in _DEFAULT_RESOURCES:
            continue
        resource, names, verbs = match.group(1), match.group(3), match.group(4)
        rules |= {(resource, names, verb) for verb in verbs.split()}
    return rules


def _chart_rules(manifest: list[dict[str, Any]], account: str, namespace: str) -> set[Rule]:
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
             for d in manifest if d["kind"] in ("Role", "ClusterRole")}
    rules: set[Rule] = set()
    for binding in manifest:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if binding["kind"] == "RoleBinding" and binding["metadata"].get("namespace") != namespace:
            continue
        if not any(s.get("kind") == "ServiceAccount" and s["name"] == account
                   for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        role_ns = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], role_ns, ref["name"])]
        for rule in role["rules"]:
            names = " ".join(rule.get("resourceNames", []))
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    base, _, sub = resource.partition("/")  # kubectl: "<res>.<group>/<sub>"
                    full = (f"{base}.{group}" if group else base) + (f"/{sub}" if sub else "")
                    rules |= {(full, names, verb) for verb in rule["verbs"]}
    return rules
