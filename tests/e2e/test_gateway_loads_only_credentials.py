"""What a cluster-mode gateway asks the API server for, and what it refuses to load.

Asserted on the server's own view: the local control plane's audit log records the URI of
every Secret, ConfigMap and GatewayEndpoint request (`ControlPlane.audit_events`), so the
tests see the selector and `limit` a LIST really carried, and a GET that never happened.
The operator and the gateway run as processes on ServiceAccount tokens bound to
docs/*-rbac.yaml (the chart's rules, see test_chart.py); fake providers record the
`Authorization` header each request carried. Each test is named after the attack or the
failure it keeps out, and fails on the code before issue 14 (a LIST that dropped its query).
"""

from __future__ import annotations

import datetime
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import openai
import yaml

from switchyard_schema import contract
from switchyard_testing import stack
from switchyard_testing.controlplane import ControlPlane
from tests.e2e.support import DEADLINE, System, wait_for

FORGED_METRIC = "switchyard_configmaps_refused_total"
PAGE_SIZE = "500"
SELECTORS = {
    "secrets": contract.CREDENTIAL_SELECTOR,
    "configmaps": contract.MANAGED_BY_SELECTOR,
    "gatewayendpoints": None,
}


def _username(kubeconfig: Path) -> str:
    config = yaml.safe_load(kubeconfig.read_text())
    return str(config["users"][0]["name"])


def _query(event: dict[str, Any]) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(event["requestURI"]).query))


def _reads(plane: ControlPlane, user: str, since: float = 0.0) -> list[dict[str, Any]]:
    """The user's completed requests on the audited resources since `since` (epoch)."""
    out = []
    for event in plane.audit_events(user):
        stamp = str(event.get("requestReceivedTimestamp", "")).replace("Z", "+00:00")
        when = datetime.datetime.fromisoformat(stamp).timestamp()
        if event.get("stage") in ("ResponseComplete", "ResponseStarted") and when >= since - 1:
            out.append(event)
    return out


def _error(s: System, model: str) -> tuple[int, str]:
    """(status, error message) of one chat completion expected to fail."""
    try:
        s.client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    except openai.APIStatusError as exc:
        return exc.status_code, json.dumps(exc.body)
    return 200, ""


def _keys_seen(s: System, fake: str) -> set[str]:
    return {str(r.headers.get("Authorization", "")) for r in list(s.fakes[fake].requests)}


def _endpoint_on(s: System, name: str, secret: str) -> None:
    target = {**s.target("a", 100), "apiKey": {"secretKeyRef": {"name": secret, "key": "api-key"}}}
    s.cluster.apply([{
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
        "metadata": {"name": name, "namespace": s.namespace},
        "spec": {"trafficSplit": [target]},
    }])


def _secret(s: System, name: str, value: str, labelled: bool) -> None:
    labels = {contract.CREDENTIAL_LABEL: contract.CREDENTIAL_VALUE} if labelled else {}
    s.cluster.apply([{
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": s.namespace, "labels": labels},
        "stringData": {"api-key": value},
    }])


def test_list_sends_label_selector_and_limit(
    system: System, local_control_plane: ControlPlane, accounts: dict[str, Path]
) -> None:
    s, user = system, _username(accounts["gateway"])
    events = _reads(local_control_plane, user)
    lists = [e for e in events if e["verb"] == "list"]
    listed = {(e["objectRef"]["resource"], e["objectRef"].get("namespace")) for e in lists}
    for resource in SELECTORS:
        assert {(resource, s.namespace), (resource, s.other)} <= listed, listed
    for event in lists:
        query = _query(event)
        resource = event["objectRef"]["resource"]
        assert query.get("limit") == PAGE_SIZE, event["requestURI"]
        assert query.get("labelSelector") == SELECTORS[resource], event["requestURI"]
    for event in (e for e in events if e["verb"] == "watch"):
        resource = event["objectRef"]["resource"]
        assert _query(event).get("labelSelector") == SELECTORS[resource], event["requestURI"]


def test_unlabelled_secret_is_never_loaded(
    system: System, local_control_plane: ControlPlane, accounts: dict[str, Path]
) -> None:
    """A tenant points a target at a Secret nobody labelled: the gateway must not use it.

    The Secret and the endpoint exist before the gateway starts, so its first LIST is what
    would carry the Secret in (the WATCH was always filtered).
    """
    s, user = system, _username(accounts["gateway"])
    s.gateway.stop()
    _secret(s, "plain-key", "sk-unlabelled", labelled=False)
    _endpoint_on(s, "plain", "plain-key")
    wait_for("ConfigMap rendered", lambda: s.configmap_hash("plain"), context=s.logs)
    started = time.time()
    s.gateway.start()
    s.gateway.wait_for("/readyz", timeout=DEADLINE)

    status, message = _error(s, "plain")
    assert status == 502 and "missingCredential" in message, (status, message)
    assert "Bearer sk-unlabelled" not in _keys_seen(s, "a")
    events = _reads(local_control_plane, user, since=started)
    assert [e for e in events if e["objectRef"].get("name") == "plain-key"] == []
    secret_reads = [e for e in events if e["objectRef"]["resource"] == "secrets"]
    assert secret_reads and all(
        _query(e).get("labelSelector") == contract.CREDENTIAL_SELECTOR
        for e in secret_reads if e["verb"] in ("list", "watch")
    ), [e["requestURI"] for e in secret_reads]

    # Labelled by the platform, it is used without a restart; unlabelled, it is gone again.
    s.cluster.kubectl("label", "secret", "plain-key", "-n", s.namespace,
                      contract.CREDENTIAL_SELECTOR)
    wait_for("served once labelled", s.serving("plain"), context=s.logs)
    assert "Bearer sk-unlabelled" in _keys_seen(s, "a")
    s.cluster.kubectl("label", "secret", "plain-key", "-n", s.namespace,
                      f"{contract.CREDENTIAL_LABEL}-")
    wait_for("refused once unlabelled", lambda: _error(s, "plain")[0] == 502, context=s.logs)


def test_new_reference_to_a_dropped_key_is_fetched(
    system: System, local_control_plane: ControlPlane, accounts: dict[str, Path]
) -> None:
    """A labelled Secret nobody referenced was not kept; the first reference GETs it."""
    s, user = system, _username(accounts["gateway"])
    _secret(s, "late-key", "sk-late", labelled=True)
    time.sleep(1.0)  # the watch delivers it, unreferenced: its value is dropped
    _endpoint_on(s, "late", "late-key")
    wait_for("late served", s.serving("late"), context=s.logs)
    assert "Bearer sk-late" in _keys_seen(s, "a")
    gets = [e for e in _reads(local_control_plane, user)
            if e["verb"] == "get" and e["objectRef"].get("name") == "late-key"]
    assert gets and all(e["responseStatus"]["code"] == 200 for e in gets), gets

    _secret(s, "late-key", "sk-late-rotated", labelled=True)  # rotation: through the watch
    s.loop.call(s.fakes["a"].requests.clear)

    def rotated() -> bool:
        s.chat("late")
        return "Bearer sk-late-rotated" in _keys_seen(s, "a")

    wait_for("rotated key used", rotated, context=s.logs)


def _expected_forged(s: System) -> int:
    """ConfigMaps anywhere that claim to be ours with no live owner of that UID and name
    (orphans waiting for the garbage collector excepted): 0 on a fresh cluster; other test
    modules sharing this cluster may have left a forged one behind."""
    maps = json.loads(s.cluster.kubectl(
        "get", "configmaps", "-A", "-l", contract.MANAGED_BY_SELECTOR, "-o", "json").stdout)
    live = json.loads(s.cluster.kubectl("get", "gatewayendpoints", "-A", "-o", "json").stdout)
    uids = {(e["metadata"]["namespace"], e["metadata"]["name"]): e["metadata"]["uid"]
            for e in live["items"]}
    forged = 0
    for cm in maps["items"]:
        meta = cm["metadata"]
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("controller")
                and r.get("kind") == "GatewayEndpoint"]
        owner = refs[0] if refs else None
        if owner is None or meta["name"] != contract.configmap_name(owner["name"]):
            forged += 1
        elif (meta["namespace"], owner["name"]) in uids:
            forged += uids[(meta["namespace"], owner["name"])] != owner["uid"]
    return forged


def _samples(gateway: stack.Service) -> list[str]:
    metrics = gateway.admin_get("/metrics")[1].decode()
    return [m for m in metrics.splitlines() if m.startswith(FORGED_METRIC)]


def test_foreign_configmaps_are_never_counted_as_forged(
    system: System, accounts: dict[str, Path], tmp_path: Path
) -> None:
    """The chart's default (every namespace watched): kube-root-ca.crt, a tenant's own
    ConfigMaps and an endpoint's deletion leave `refused{reason="forged"}` where it was."""
    s = system
    s.cluster.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "app-settings", "namespace": s.namespace},
                      "data": {"endpoint.json": "{}"}}])
    roots = s.cluster.kubectl("get", "configmaps", "-A", "--field-selector",
                              "metadata.name=kube-root-ca.crt", "-o", "name").stdout.split()
    assert roots, "the root CA publisher should have put kube-root-ca.crt in every namespace"
    s.endpoint("chat", {"a": 100}, [])
    wait_for("chat served", s.serving("chat"), context=s.logs)

    everywhere = stack.gateway(accounts["gateway"], tmp_path, default_namespace=s.namespace)
    everywhere.start()
    try:
        everywhere.wait_for("/readyz", timeout=DEADLINE)
        expected = _expected_forged(s)
        line = f'{FORGED_METRIC}{{reason="forged"}} {float(expected)}'
        assert line in _samples(everywhere), _samples(everywhere)
        s.cluster.kubectl("delete", "gatewayendpoint", "chat", "-n", s.namespace)
        wait_for("chat gone", s.serving("chat", 404), context=s.logs)
        time.sleep(1.0)  # the orphaned ConfigMap's events have arrived by now
        assert line in _samples(everywhere), _samples(everywhere)
        print(f"\n[forged] {line}")
    finally:
        everywhere.stop()


def test_fresh_cluster_shows_no_forged_configmaps(
    local_control_plane: ControlPlane, tmp_path: Path
) -> None:
    """A control plane of its own, nothing but what every cluster has (kube-root-ca.crt in
    each namespace) and a team's ConfigMap; the gateway as the chart installs it by default
    (every namespace, the chart's rules): the alert's series reads 0 from the start."""
    crds = Path(__file__).resolve().parents[2] / "crds"
    with ControlPlane.start(local_control_plane.bin_dir, crds=crds) as fresh:
        home = fresh.create_namespace("switchyard-system")
        team = fresh.create_namespace("team-a")
        fresh.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "app-settings", "namespace": team},
                      "data": {"endpoint.json": "{}"}}])
        wait_for("kube-root-ca.crt published", lambda: fresh.kubectl(
            "get", "configmap", "kube-root-ca.crt", "-n", team, check=False).returncode == 0)
        kubeconfig = stack.bind_service_account(fresh, stack.GATEWAY_RBAC, home)
        gateway = stack.gateway(kubeconfig, tmp_path).start()
        try:
            gateway.wait_for("/readyz", timeout=DEADLINE)
            samples = _samples(gateway)
        finally:
            gateway.stop()
    print(f"\n[fresh cluster] {samples}")
    assert f'{FORGED_METRIC}{{reason="forged"}} 0.0' in samples, samples
