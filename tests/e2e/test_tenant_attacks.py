"""A tenant with the built-in `edit` role attacks the trust boundary (issue 14, docs/security.md).

The real API server, the operator and a cluster-mode gateway as processes on ServiceAccount
tokens bound to docs/*-rbac.yaml, and an attacker: a ServiceAccount token (`kubectl create
token`) bound to exactly the built-in `edit` ClusterRole in its own namespace. Its rights on
GatewayEndpoints come only from the chart's aggregated roles (rendered with `helm template`),
filled into `edit` by kube-controller-manager's clusterrole-aggregation controller. The
attacker runs its own upstream on loopback (`Attacker`, a plain HTTP server on its own port
that records every request): no request carrying a key may ever reach it.
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from switchyard_schema import canonical_json, signing
from switchyard_schema.normalize import spec_hash
from switchyard_testing import stack
from switchyard_testing.cluster import Cluster, KubectlError
from switchyard_testing.fakes import FakeOpenAI
from tests.e2e.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchyard"
TEAM_A_KEY = "sk-team-a-0123456789"
PLATFORM_KEY = "sk-platform-0123456789"
SIGNATURE = "switchyard.dev/signature"


# --- the attacker's upstream and identity ------------------------------------------------


class Attacker:
    """The tenant's own upstream: answers like OpenAI and records every request it gets."""

    def __init__(self) -> None:
        seen: list[dict[str, str]] = []
        self.requests = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                body = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0, "model": "stolen",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "thanks"}}],
                }).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def keys_received(self) -> list[str]:
        """Every credential-looking header value that reached the attacker."""
        return [v for r in self.requests for k, v in r.items()
                if k in ("authorization", "api-key", "x-api-key", "x-goog-api-key")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    server = Attacker()
    yield server
    server.close()


@pytest.fixture(scope="module")
def aggregated_roles(cluster: Cluster) -> Iterator[None]:
    """The chart's aggregated admin/edit/view ClusterRoles, applied as the chart renders them."""
    helm = cluster.bin_dir / "helm"
    if not helm.exists():
        pytest.skip(f"no helm in {cluster.bin_dir}: run hack/controlplane/build.sh")
    rendered = subprocess.run(
        [str(helm), "template", "sy", str(CHART), "-n", "e2e-attacks",
         "--show-only", "templates/aggregate-roles.yaml"],
        capture_output=True, text=True, check=True, timeout=120,
        env={"HOME": str(cluster.work_dir), "PATH": "/usr/bin:/bin"},
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    cluster.apply(docs)
    yield
    for doc in docs:
        cluster.kubectl("delete", "clusterrole", doc["metadata"]["name"], "--ignore-not-found")


def tenant_of(cluster: Cluster, namespace: str) -> Path:
    """A kubeconfig of ServiceAccount `tenant`, bound to the built-in `edit` in `namespace`."""
    config = cluster.service_account_kubeconfig(namespace, "tenant")
    cluster.apply([{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "tenant-edit", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}],
    }])
    user = f"system:serviceaccount:{namespace}:tenant"

    def can(verb: str, resource: str, *extra: str) -> bool:
        done = cluster.kubectl("auth", "can-i", verb, resource, *extra, "-n", namespace,
                               f"--as={user}", check=False)
        return done.stdout.strip() == "yes"

    wait_for("edit to aggregate GatewayEndpoint rights",
             lambda: can("create", "gatewayendpoints.switchyard.dev"), timeout=60)
    assert can("update", "configmaps") and can("create", "secrets")  # the real `edit`
    assert not can("patch", "gatewayendpoints.switchyard.dev", "--subresource=status")
    return config


@pytest.fixture
def tenant(cluster: Cluster, namespace: str, aggregated_roles: None) -> Path:
    return tenant_of(cluster, namespace)


# --- the system under attack -------------------------------------------------------------


class Stack:
    """Operator + cluster-mode gateway over the tenant's namespace and team-b's."""

    def __init__(self, accounts: dict[str, Path], namespaces: list[str], log_dir: Path,
                 operator_flags: list[str], gateway_flags: list[str]) -> None:
        self.operator = stack.operator(accounts["operator"], namespaces, log_dir,
                                       extra=operator_flags)
        self.gateway = stack.gateway(accounts["gateway"], log_dir, namespaces=namespaces,
                                     default_namespace=namespaces[0], extra=gateway_flags,
                                     env={"OPENAI_API_KEY": PLATFORM_KEY})
        self.client = openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="unused",
                                    max_retries=0, timeout=15)

    def start(self) -> Stack:
        self.operator.start()
        self.gateway.start()
        self.gateway.wait_for("/readyz")
        return self

    def stop(self) -> None:
        self.gateway.stop()
        self.operator.stop()

    def logs(self) -> str:
        return (f"--- operator\n{self.operator.process.tail(40)}\n"
                f"--- gateway\n{self.gateway.process.tail(40)}")

    def chat(self, model: str) -> tuple[int, str]:
        """(status, target that served) of one chat completion."""
        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hi"}])
            raw.parse()
            return raw.status_code, raw.headers.get("x-switchyard-target", "")
        except openai.APIStatusError as exc:
            return exc.status_code, exc.response.headers.get("x-switchyard-target", "")

    def refused(self, reason: str) -> float:
        return stack.metric_value(self.gateway.admin_get("/metrics")[1].decode(),
                                  "switchyard_configmaps_refused_total", reason=reason)


@pytest.fixture
def team_b(cluster: Cluster) -> Iterator[str]:
    """Another tenant's namespace, with a labelled Secret the attacker wants."""
    name = cluster.create_namespace("e2e-team-b")
    cluster.apply([{"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "b-key", "namespace": name,
                                 "labels": {"switchyard.dev/credential": "true"}},
                    "stringData": {"api-key": "sk-team-b-secret"}}])
    yield name
    cluster.delete_namespace(name, wait=False)


def _credential(cluster: Cluster, namespace: str) -> None:
    cluster.apply([{"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "team-a-key", "namespace": namespace,
                                 "labels": {"switchyard.dev/credential": "true"}},
                    "stringData": {"api-key": TEAM_A_KEY}}])


def _endpoint(namespace: str, target: dict[str, Any], name: str = "chat") -> dict[str, Any]:
    return {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"trafficSplit": [{"name": "main", "weight": 100, **target}],
                     "policy": {"attemptTimeoutSeconds": 5, "requestTimeoutSeconds": 10}}}


def _as_tenant(cluster: Cluster, config: Path, *args: str, input: str | None = None,
               check: bool = True) -> Any:
    return cluster.kubectl(*args, input=input, check=check, kubeconfig_path=config)


def _configmap(cluster: Cluster, config: Path, namespace: str) -> dict[str, Any]:
    done = _as_tenant(cluster, config, "get", "configmap", "gwe-chat", "-n", namespace,
                      "-o", "json", "--ignore-not-found")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def _tamper(cm: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The attack: point the target at the attacker and recompute the public spec hash."""
    payload = json.loads(cm["data"]["endpoint.json"])
    payload["trafficSplit"][0]["baseUrl"] = base_url
    body = {k: payload[k] for k in ("task", "trafficSplit", "fallbacks", "policy")}
    payload["specHash"] = spec_hash(body)
    out = json.loads(json.dumps(cm))
    out["data"]["endpoint.json"] = canonical_json(payload).decode()
    out["metadata"]["annotations"]["switchyard.dev/spec-hash"] = payload["specHash"]
    return out


def _running(accounts: dict[str, Path], namespaces: list[str], tmp_path: Path,
             legit: FakeOpenAI, attacker: Attacker,
             hosts: str = "127.0.0.1") -> Stack:
    # The attacker's upstream is on an allowed host (a tenant's own Service under an
    # allowed `*.svc.cluster.local`, in a real cluster): the host allow-list does not stop
    # it, so the signature is what is on trial. The platform key is bound to OpenAI.
    binding = "OPENAI_API_KEY=api.openai.com"
    system = Stack(
        accounts, namespaces, tmp_path,
        operator_flags=["--allowed-base-url-hosts", hosts, "--allowed-env-keys", binding],
        gateway_flags=["--allowed-base-url-hosts", hosts, "--allowed-env-keys", binding],
    )
    return system.start()


@pytest.fixture
def legit(fakes: dict[str, FakeOpenAI]) -> FakeOpenAI:
    return fakes["a"]


# --- config integrity ---------------------------------------------------------------------


def _serve_chat(cluster: Cluster, tenant: Path, namespace: str, system: Stack,
                legit: FakeOpenAI, model: str) -> None:
    """As the tenant: team-a's key and an endpoint on the legitimate upstream; served."""
    _credential(cluster, namespace)
    _as_tenant(cluster, tenant, "apply", "-f", "-", input=json.dumps(
        _endpoint(namespace, {"provider": "openai-compatible", "model": model,
                              "baseUrl": legit.base_url,
                              "apiKey": {"secretKeyRef": {"name": "team-a-key",
                                                          "key": "api-key"}}})))
    wait_for("chat served", lambda: system.chat("chat")[0] == 200, context=system.logs)


def test_tampered_configmap_with_recomputed_hash_is_never_served(
    cluster: Cluster, namespace: str, accounts: dict[str, Path], tenant: Path,
    legit: FakeOpenAI, attacker: Attacker, tmp_path: Path,
) -> None:
    """The gateway alone must refuse it: the operator is stopped, so nothing repairs it."""
    system = _running(accounts, [namespace], tmp_path, legit, attacker)
    try:
        _serve_chat(cluster, tenant, namespace, system, legit, "m")
        cm = _configmap(cluster, tenant, namespace)
        assert cm["metadata"]["annotations"][SIGNATURE].startswith("v1:")
        system.operator.stop()  # no drift repair: the gateway's own check is on trial

        tampered = _tamper(cm, attacker.base_url)
        # The attacker's own tooling could reproduce the hash: it is public.
        _as_tenant(cluster, tenant, "replace", "-f", "-", input=json.dumps(tampered))
        wait_for("the tampered ConfigMap refused",
                 lambda: system.refused("bad_signature") >= 1, context=system.logs)
        served = [system.chat("chat") for _ in range(20)]
        assert served == [(200, "main")] * 20  # the last good config, on the legit upstream
        assert attacker.requests == [], attacker.requests
        # Removing the signature instead is refused too.
        tampered = _configmap(cluster, tenant, namespace)
        del tampered["metadata"]["annotations"][SIGNATURE]
        _as_tenant(cluster, tenant, "replace", "-f", "-", input=json.dumps(tampered))
        wait_for("the unsigned ConfigMap refused",
                 lambda: system.refused("unsigned") >= 1, context=system.logs)
        assert system.chat("chat") == (200, "main")
        assert attacker.keys_received() == []
        assert TEAM_A_KEY not in system.gateway.log()
    finally:
        system.stop()


def test_configmap_drift_is_repaired(
    cluster: Cluster, namespace: str, accounts: dict[str, Path], tenant: Path,
    legit: FakeOpenAI, attacker: Attacker, tmp_path: Path,
) -> None:
    """Edited, relabelled or deleted: the operator restores payload and signature, timed."""
    system = _running(accounts, [namespace], tmp_path, legit, attacker)
    try:
        _serve_chat(cluster, tenant, namespace, system, legit, "m")
        good = _configmap(cluster, tenant, namespace)

        def restored(want: dict[str, Any]) -> Any:
            def probe() -> bool:
                cm = _configmap(cluster, tenant, namespace)
                meta = cm.get("metadata", {})
                return bool(cm) and cm.get("data") == want["data"] \
                    and meta.get("annotations", {}).get(SIGNATURE) \
                    == want["metadata"]["annotations"][SIGNATURE] \
                    and meta.get("labels", {}).get("app.kubernetes.io/managed-by") \
                    == "switchyard-operator"
            return probe

        def timed(what: str, attack: list[str], input: str | None = None,
                  want: dict[str, Any] = good) -> float:
            started = time.monotonic()
            _as_tenant(cluster, tenant, *attack, input=input)
            wait_for(f"drift repaired after {what}", restored(want), timeout=30,
                     context=system.logs)
            return time.monotonic() - started

        times = {
            "edited": timed("an edit", ["replace", "-f", "-"],
                            json.dumps(_tamper(good, attacker.base_url))),
            "relabelled": timed("a relabel", ["label", "configmap", "gwe-chat", "-n",
                                              namespace, "app.kubernetes.io/managed-by-"]),
            "deleted": timed("a deletion", ["delete", "configmap", "gwe-chat", "-n",
                                            namespace]),
        }
        # An older payload of ours, validly signed, put back: drift too, and never served.
        _as_tenant(cluster, tenant, "patch", "gatewayendpoint", "chat", "-n", namespace,
                   "--type=json", "-p", json.dumps([
                       {"op": "replace", "path": "/spec/trafficSplit/0/model", "value": "m2"}]))
        newer = wait_for("generation 2 rendered", lambda: (
            lambda cm: cm if cm and '"generation":2' in cm["data"]["endpoint.json"] else None)(
                _configmap(cluster, tenant, namespace)), context=system.logs)
        replay = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {**{k: newer["metadata"][k] for k in ("name", "namespace",
                                                                     "resourceVersion")},
                               "labels": good["metadata"]["labels"],
                               "annotations": good["metadata"]["annotations"],
                               "ownerReferences": good["metadata"]["ownerReferences"]},
                  "data": good["data"]}
        times["replayed"] = timed("a replay", ["replace", "-f", "-"], json.dumps(replay),
                                  want=newer)
        wait_for("the replay refused by the gateway", lambda: system.refused("replayed") >= 1,
                 context=system.logs)
        print("\n[drift repair] " + ", ".join(f"{k} {v:.2f}s" for k, v in times.items()))
        assert all(seconds < 10 for seconds in times.values()), times
        assert system.chat("chat") == (200, "main")
        assert attacker.keys_received() == []
        events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o",
                                            "json").stdout)["items"]
        assert "ConfigMapRepaired" in {e["reason"] for e in events}
    finally:
        system.stop()


# --- env keys bound to hosts ----------------------------------------------------------------


def _exfiltration(namespace: str, attacker: Attacker) -> dict[str, Any]:
    return _endpoint(namespace, {"provider": "openai-compatible", "model": "m",
                                 "baseUrl": attacker.base_url,
                                 "apiKey": {"envVar": "OPENAI_API_KEY"}})


def _status(cluster: Cluster, namespace: str, name: str = "chat") -> dict[str, Any]:
    done = cluster.kubectl("get", "gatewayendpoint", name, "-n", namespace, "-o", "json")
    status: dict[str, Any] = json.loads(done.stdout).get("status") or {}
    return status


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def test_env_key_exfiltration_is_a_policy_violation(
    cluster: Cluster, namespace: str, accounts: dict[str, Path], tenant: Path,
    legit: FakeOpenAI, attacker: Attacker, tmp_path: Path,
) -> None:
    # The attacker's port is an allowed baseUrl here: only the env key's binding stops it.
    system = Stack(
        accounts, [namespace], tmp_path,
        operator_flags=["--allowed-base-url-hosts", "127.0.0.1",
                        "--allowed-env-keys", "OPENAI_API_KEY=api.openai.com"],
        gateway_flags=["--allowed-base-url-hosts", "127.0.0.1",
                       "--allowed-env-keys", "OPENAI_API_KEY=api.openai.com"],
    ).start()
    try:
        _as_tenant(cluster, tenant, "apply", "-f", "-",
                   input=json.dumps(_exfiltration(namespace, attacker)))
        accepted = wait_for(
            "Accepted=False PolicyViolation",
            lambda: _condition(_status(cluster, namespace), "Accepted").get("reason")
            == "PolicyViolation" and _status(cluster, namespace),
            context=system.logs)
        message = _condition(accepted, "Accepted")["message"]
        assert "spec.trafficSplit[0].apiKey.envVar" in message
        assert "bound to api.openai.com" in message
        assert PLATFORM_KEY not in json.dumps(accepted)
        events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o",
                                            "json").stdout)["items"]
        assert "Rejected" in {e["reason"] for e in events}
        assert _configmap(cluster, tenant, namespace) == {}  # nothing rendered
        assert system.chat("chat")[0] == 404
        assert attacker.requests == []
    finally:
        system.stop()


def test_env_key_exfiltration_refused_by_gateway_when_operator_policy_is_loose(
    cluster: Cluster, namespace: str, accounts: dict[str, Path], tenant: Path,
    legit: FakeOpenAI, attacker: Attacker, tmp_path: Path,
) -> None:
    """Defence in depth: an operator misconfigured to allow it signs the config; the
    gateway, given the platform's real binding, still refuses it."""
    system = Stack(
        accounts, [namespace], tmp_path,
        operator_flags=["--allowed-base-url-hosts", "127.0.0.1",
                        "--allowed-env-keys", "OPENAI_API_KEY=127.0.0.1"],
        gateway_flags=["--allowed-base-url-hosts", "127.0.0.1",
                       "--allowed-env-keys", "OPENAI_API_KEY=api.openai.com"],
    ).start()
    try:
        _as_tenant(cluster, tenant, "apply", "-f", "-",
                   input=json.dumps(_exfiltration(namespace, attacker)))
        wait_for("the operator renders it", lambda: _configmap(cluster, tenant, namespace),
                 context=system.logs)
        wait_for("the gateway refuses it", lambda: system.refused("policy") >= 1,
                 context=system.logs)
        assert system.chat("chat")[0] == 404
        assert attacker.requests == []
    finally:
        system.stop()


# --- Secret-name traversal --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../team-b/secrets/b-key", "team-b/b-key", "..%2Fb-key"])
def test_secret_name_traversal_is_refused_at_admission(
    cluster: Cluster, namespace: str, tenant: Path, team_b: str, name: str,
) -> None:
    manifest = _endpoint(namespace, {"provider": "openai", "model": "gpt-5",
                                     "apiKey": {"secretKeyRef": {"name": name.replace(
                                         "team-b", team_b), "key": "api-key"}}})
    with pytest.raises(KubectlError) as refused:
        _as_tenant(cluster, tenant, "create", "-f", "-", input=json.dumps(manifest))
    assert "spec.trafficSplit[0].apiKey.secretKeyRef.name" in refused.value.stderr
    assert "should match" in refused.value.stderr


def test_another_namespaces_secret_never_shows_in_status_or_events(
    cluster: Cluster, namespace: str, accounts: dict[str, Path], tenant: Path, team_b: str,
    legit: FakeOpenAI, attacker: Attacker, tmp_path: Path,
) -> None:
    """A name that exists only in team-b reads as missing in team-a, and nothing more."""
    system = _running(accounts, [namespace, team_b], tmp_path, legit, attacker)
    try:
        _as_tenant(cluster, tenant, "apply", "-f", "-", input=json.dumps(_endpoint(
            namespace, {"provider": "openai", "model": "gpt-5",
                        "apiKey": {"secretKeyRef": {"name": "b-key", "key": "api-key"}}})))
        status = wait_for("ResolvedRefs=False",
                          lambda: _condition(_status(cluster, namespace), "ResolvedRefs")
                          .get("status") == "False" and _status(cluster, namespace),
                          context=system.logs)
        assert _condition(status, "ResolvedRefs")["reason"] == "SecretNotFound"
        events = _as_tenant(cluster, tenant, "get", "events", "-n", namespace, "-o",
                            "json").stdout
        for text in (json.dumps(status), events):
            assert team_b not in text
            assert "sk-team-b-secret" not in text
            assert "label" not in json.dumps(_condition(status, "ResolvedRefs")).lower()
        assert attacker.requests == []
    finally:
        system.stop()


# --- key rotation (last: it changes the module's signing key) --------------------------------


def test_signing_key_rotation_keeps_serving(
    cluster: Cluster, namespace: str, accounts: dict[str, Path], tenant: Path,
    legit: FakeOpenAI, attacker: Attacker, tmp_path: Path,
) -> None:
    """docs/security.md's rotation: new `current`, old `previous`, restart the operator."""
    system = _running(accounts, [namespace], tmp_path, legit, attacker)
    try:
        _serve_chat(cluster, tenant, namespace, system, legit, "before")
        home = yaml.safe_load(accounts["gateway"].read_text())["contexts"][0]["context"][
            "namespace"]
        secret = json.loads(cluster.kubectl("get", "secret", stack.SIGNING_SECRET, "-n", home,
                                            "-o", "json").stdout)
        new = base64.b64encode(secrets.token_bytes(48)).decode()
        secret["data"] = {"current": new, "previous": secret["data"]["current"]}
        cluster.kubectl("replace", "-f", "-", input=json.dumps(secret))
        system.operator.stop()
        system.operator = stack.operator(
            accounts["operator"], [namespace], tmp_path,
            extra=["--allowed-base-url-hosts", "127.0.0.1",
                   "--allowed-env-keys", "OPENAI_API_KEY=api.openai.com"]).start()

        def signed_with_new_key() -> bool:
            cm = _configmap(cluster, tenant, namespace)
            owner = cm["metadata"]["ownerReferences"][0]
            return signing.verify(signing.SigningKeys(base64.b64decode(new)), namespace, "chat",
                                  owner["uid"], cm["data"]["endpoint.json"].encode(),
                                  cm["metadata"]["annotations"][SIGNATURE])

        wait_for("re-signed with the new key", signed_with_new_key, context=system.logs)
        assert system.chat("chat") == (200, "main")  # served throughout
        _as_tenant(cluster, tenant, "patch", "gatewayendpoint", "chat", "-n", namespace,
                   "--type=json", "-p", json.dumps([
                       {"op": "replace", "path": "/spec/trafficSplit/0/model",
                        "value": "after"}]))
        wait_for("a change signed with the new key served", lambda: system.chat("chat")[0]
                 == 200 and legit.requests_for("after"), context=system.logs)
    finally:
        system.stop()
