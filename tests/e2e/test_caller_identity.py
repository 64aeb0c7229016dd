"""Caller identity on the real API server: ServiceAccount tokens and RBAC decide who may
call which endpoint (`switchyard gateway --auth kubernetes`).

The gateway runs standalone (`--config`, manifests in a file) with `--kubeconfig` of a
ServiceAccount bound to exactly docs/gateway-auth-rbac.yaml (`test_cluster_mode`: in
cluster mode next to the operator, with docs/gateway-rbac.yaml too), so the reviews go to
the real kube-apiserver with the permissions the docs promise; callers' RBAC is the ClusterRole and
the group RoleBinding of docs/caller-rbac-example.yaml. Tokens come from the TokenRequest
API (`kubectl create token --audience switchyard`), and the client is the official openai
SDK. Expiry: the API server's shortest TokenRequest is 10 minutes, too long to wait for,
so an expired token is covered by the guard's unit tests (tests/unit/gateway/
test_identity_guard.py, fake clocks) and here by a token whose ServiceAccount was deleted
(the API server refuses it: 401).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from switchyard_testing import stack
from switchyard_testing.background import BackgroundLoop
from switchyard_testing.cluster import Cluster
from switchyard_testing.controlplane import ControlPlane
from switchyard_testing.fakes import FakeOpenAI
from tests.e2e.support import DEADLINE, System, wait_for

ROOT = Path(__file__).resolve().parents[2]
AUTH_RBAC = ROOT / "docs" / "gateway-auth-rbac.yaml"
CALLER_RBAC = ROOT / "docs" / "caller-rbac-example.yaml"
KEY = "sk-e2e-caller-identity"
#: The guard's documented access TTL (identity/guard.py, docs/operations.md) and slack for
#: one review and the polling.
ACCESS_TTL = 5.0
SLACK = 3.0


class Setup:
    """Two tenant namespaces, their ServiceAccounts and RBAC, and the gateway."""

    def __init__(self, cluster: Cluster, a: str, b: str, gateway: stack.Service) -> None:
        self.cluster, self.a, self.b, self.gateway = cluster, a, b, gateway

    def token(self, namespace: str, account: str, audience: str | None = "switchyard") -> str:
        self.cluster.apply([{"apiVersion": "v1", "kind": "ServiceAccount",
                             "metadata": {"name": account, "namespace": namespace}}])
        args = ["create", "token", account, "-n", namespace, "--duration=10m"]
        if audience is not None:
            args.append(f"--audience={audience}")
        return self.cluster.kubectl(*args).stdout.strip()

    def client(self, token: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.url + "/v1", api_key=token, max_retries=0,
                             timeout=30)

    def chat(self, token: str, model: str) -> tuple[int, dict[str, str]]:
        """(status, headers) of one chat completion as the token's caller."""
        try:
            raw = self.client(token).chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hi"}])
            raw.parse()
            return raw.status_code, dict(raw.headers)
        except openai.APIStatusError as exc:
            return exc.status_code, dict(exc.response.headers)

    def get(self, token: str, path: str) -> tuple[int, Any]:
        """(status, decoded JSON body) of a GET as the token's caller."""
        request = urllib.request.Request(self.gateway.url + path,
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return int(reply.status), json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), json.loads(exc.read())


def _manifests(a: str, b: str, fake: FakeOpenAI) -> list[dict[str, Any]]:
    target = {"name": "gpt", "provider": "openai-compatible", "model": "m",
              "baseUrl": fake.base_url, "apiKey": {"envVar": "E2E_KEY"}, "weight": 100}
    return [{"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
             "metadata": {"name": name, "namespace": ns},
             "spec": {"task": "chat", "trafficSplit": [target]}}
            for ns, name in ((a, "chat"), (a, "summary"), (b, "chat"), (b, "private"))]


def _caller_rbac(cluster: Cluster, a: str, b: str, suffix: str) -> None:
    docs = [d for d in yaml.safe_load_all(CALLER_RBAC.read_text()) if d]
    role, binding = docs
    role["metadata"]["name"] += suffix
    binding["roleRef"]["name"] = role["metadata"]["name"]
    binding["metadata"]["namespace"] = a
    binding["subjects"][0]["name"] = f"system:serviceaccounts:{a}"
    # In b, only b/app, and only for `chat`: a Role with resourceNames.
    narrow = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "chat-user", "namespace": b},
         "rules": [{"apiGroups": ["switchyard.dev"], "resources": ["gatewayendpoints"],
                    "verbs": ["use"], "resourceNames": ["chat"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "chat-user", "namespace": b},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "chat-user"},
         "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": b}]},
    ]
    cluster.apply([role, binding, *narrow])


@pytest.fixture(scope="module")
def setup(cluster: Cluster, background_loop: BackgroundLoop,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    fake = background_loop.run(FakeOpenAI.start(name="p", expected_key=KEY))
    a, b = cluster.create_namespace("e2e-id-a"), cluster.create_namespace("e2e-id-b")
    home = cluster.create_namespace("e2e-id-sys")
    work = tmp_path_factory.mktemp("identity")
    kubeconfig = stack.bind_service_account(cluster, AUTH_RBAC, home)
    _caller_rbac(cluster, a, b, "-" + home.rsplit("-", 1)[-1])
    config = work / "endpoints.yaml"
    config.write_text(yaml.safe_dump_all(_manifests(a, b, fake)))
    gateway = stack.gateway(kubeconfig, work, config=config, default_namespace=a,
                            extra=["--auth", "kubernetes"], env={"E2E_KEY": KEY})
    gateway.start()
    try:
        gateway.wait_for("/readyz", timeout=60)
        yield Setup(cluster, a, b, gateway)
    finally:
        gateway.stop()
        background_loop.run(fake.close())
        for ns in (a, b, home):
            cluster.delete_namespace(ns)


def test_bound_unbound_and_other_namespace(setup: Setup) -> None:
    s = setup
    a_app, b_app = s.token(s.a, "app"), s.token(s.b, "app")
    status, headers = s.chat(a_app, "chat")
    assert status == 200, (status, s.gateway.process.tail(20))
    assert s.chat(b_app, f"{s.b}/chat")[0] == 200
    # b/app reaching a's endpoint, and an unbound ServiceAccount: 403, not retried.
    status, headers = s.chat(b_app, f"{s.a}/chat")
    assert status == 403 and headers["x-should-retry"] == "false"
    assert s.chat(s.token(s.b, "idle"), f"{s.b}/chat")[0] == 403
    # b/app may use only `chat` in b (resourceNames): private is refused like a missing name.
    assert s.chat(b_app, f"{s.b}/private")[0] == 403
    assert s.chat(b_app, f"{s.b}/no-such")[0] == 403


def test_wrong_audience_and_deleted_account_are_401(setup: Setup) -> None:
    s = setup
    for token in (s.token(s.a, "app", audience="not-switchyard"),
                  s.token(s.a, "app", audience=None)):  # the API server's own audience
        status, headers = s.chat(token, "chat")
        assert status == 401 and headers["x-should-retry"] == "false"
    gone = s.token(s.a, "short-lived")
    s.cluster.kubectl("delete", "serviceaccount", "short-lived", "-n", s.a)
    assert s.chat(gone, "chat")[0] == 401
    assert s.chat("not.a.token", "chat")[0] == 401


def test_deleted_rolebinding_is_refused_within_the_access_ttl(setup: Setup) -> None:
    s = setup
    s.cluster.apply([{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "temp", "namespace": s.b},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "chat-user"},
        "subjects": [{"kind": "ServiceAccount", "name": "temp", "namespace": s.b}]}])
    token = s.token(s.b, "temp")
    deadline = time.monotonic() + 30
    while s.chat(token, f"{s.b}/chat")[0] != 200:  # RBAC caches settle in the API server
        assert time.monotonic() < deadline
        time.sleep(0.2)
    s.cluster.kubectl("delete", "rolebinding", "temp", "-n", s.b)
    revoked = time.monotonic()
    while s.chat(token, f"{s.b}/chat")[0] == 200:
        assert time.monotonic() - revoked < ACCESS_TTL + SLACK, "still served past the TTL"
        time.sleep(0.2)
    assert s.chat(token, f"{s.b}/chat")[0] == 403


def _can_i(cluster: Cluster, user: str, namespace: str, name: str) -> bool:
    done = cluster.kubectl("auth", "can-i", "use", f"gatewayendpoints/{name}", "-n", namespace,
                           "--as", user, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def test_every_decision_equals_kubectl_auth_can_i(setup: Setup) -> None:
    s = setup
    callers = [(s.a, "app"), (s.a, "other"), (s.b, "app"), (s.b, "idle")]
    endpoints = [(s.a, "chat"), (s.a, "summary"), (s.b, "chat"), (s.b, "private"),
                 (s.b, "no-such")]
    table: dict[tuple[str, str], dict[str, tuple[bool, bool]]] = {}
    for ns, account in callers:
        token = s.token(ns, account)
        user = f"system:serviceaccount:{ns}:{account}"
        row = table[(ns, account)] = {}
        for e_ns, name in endpoints:
            status = s.chat(token, f"{e_ns}/{name}")[0]
            assert status in (200, 403, 404), status
            row[f"{e_ns}/{name}"] = (status != 403, _can_i(s.cluster, user, e_ns, name))
    mismatches = {c: {e: d for e, d in row.items() if d[0] != d[1]}
                  for c, row in table.items()}
    assert not any(mismatches.values()), json.dumps(
        {f"{c[0]}/{c[1]}": m for c, m in mismatches.items()}, indent=1)
    # The table is not trivially all-yes or all-no.
    decisions = [d[0] for row in table.values() for d in row.values()]
    assert any(decisions) and not all(decisions)


def test_listings_show_only_usable_endpoints(setup: Setup) -> None:
    s = setup
    a_app, b_app = s.token(s.a, "app"), s.token(s.b, "app")
    assert [m.id for m in s.client(a_app).models.list()] == ["chat", "summary"]
    assert [m.id for m in s.client(b_app).models.list()] == [f"{s.b}/chat"]
    names = [e["name"] for e in s.get(b_app, "/api/2.0/endpoints/")[1]["endpoints"]]
    assert names == [f"{s.b}/chat"]
    assert s.get(b_app, f"/v1/models/{s.b}/private")[0] == 403
    assert s.get(b_app, f"/v1/models/{s.b}/no-such")[0] == 403
    # The admin port is where metrics and the status page live; the API port has neither.
    assert s.get(a_app, "/metrics")[0] == 404
    assert s.get(a_app, "/ui/status.json")[0] == 404
    status, body = s.gateway.admin_get("/metrics")
    assert status == 200
    assert stack.metric_value(body.decode(), "switchyard_caller_requests_total",
                              caller_namespace=s.a) > 0


def test_api_server_down_serves_cached_callers_and_refuses_new_ones(
        setup: Setup, local_control_plane: ControlPlane) -> None:
    s = setup
    known = s.token(s.a, "app")
    unknown = s.token(s.a, "newcomer")
    assert s.chat(known, "chat")[0] == 200
    local_control_plane.stop_apiserver()
    try:
        time.sleep(ACCESS_TTL + 1)  # the cached decision is stale now: served on outage
        assert s.chat(known, "chat")[0] == 200
        status, headers = s.chat(unknown, "chat")
        assert status == 503, status
        assert int(headers["retry-after"]) >= 1
    finally:
        local_control_plane.start_apiserver()
    deadline = time.monotonic() + 30
    while s.chat(unknown, "chat")[0] != 200:
        assert time.monotonic() < deadline, s.gateway.process.tail(20)
        time.sleep(0.5)


def _share_signing_key(cluster: Cluster, operator_kubeconfig: Path, namespace: str) -> None:
    config = yaml.safe_load(operator_kubeconfig.read_text())
    source = config["contexts"][0]["context"]["namespace"]
    found = json.loads(cluster.kubectl("get", "secret", stack.SIGNING_SECRET, "-n", source,
                                       "-o", "json").stdout)
    cluster.kubectl("delete", "secret", stack.SIGNING_SECRET, "-n", namespace,
                    "--ignore-not-found")
    cluster.apply([{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": stack.SIGNING_SECRET, "namespace": namespace},
                    "data": found["data"]}])


def test_cluster_mode(system: System, cluster: Cluster, accounts: dict[str, Path],
                      tmp_path: Path) -> None:
    """`--auth kubernetes` on a gateway watching the operator's ConfigMaps, its
    ServiceAccount bound to docs/gateway-rbac.yaml and docs/gateway-auth-rbac.yaml."""
    s = system
    home = cluster.create_namespace("e2e-id-cluster")
    kubeconfig = stack.bind_service_account(cluster, stack.GATEWAY_RBAC, home)
    stack.bind_service_account(cluster, AUTH_RBAC, home)  # the same ServiceAccount
    # The gateway verifies the operator's signatures: its namespace holds the same key, as
    # a release's namespace holds the one Secret both components read.
    _share_signing_key(cluster, accounts["operator"], home)
    _caller_rbac(cluster, s.namespace, s.other, "-" + home.rsplit("-", 1)[-1])
    s.endpoint("chat", {"a": 100}, [])
    gateway = stack.gateway(kubeconfig, tmp_path, namespaces=[s.namespace, s.other],
                            default_namespace=s.namespace, extra=["--auth", "kubernetes"])
    gateway.start()
    try:
        gateway.wait_for("/readyz", timeout=DEADLINE)
        ids = Setup(cluster, s.namespace, s.other, gateway)
        mine, theirs = ids.token(s.namespace, "app"), ids.token(s.other, "app")
        wait_for("chat served to its namespace", lambda: ids.chat(mine, "chat")[0] == 200,
                 context=lambda: gateway.process.tail(20))
        assert ids.chat(theirs, f"{s.namespace}/chat")[0] == 403
        assert ids.chat("not.a.token", "chat")[0] == 401
    finally:
        gateway.stop()
        cluster.delete_namespace(home)
