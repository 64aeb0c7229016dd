"""The operator against a real kube-apiserver and controller-manager (no mocks).

The operator runs as a local process (`switchyard operator`), exactly as its container
would, authenticated as a ServiceAccount bound to docs/operator-rbac.yaml, so these tests
prove the permissions too. Each test gets its own namespace and its own operator watching
only that namespace. Waits poll with generous deadlines that only guard against hangs;
nothing asserts on timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchyard_schema import normalize, parse_endpoint
from switchyard_testing import stack
from switchyard_testing.cluster import Cluster
from switchyard_testing.processes import ManagedProcess
from tests.e2e.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "docs" / "operator-rbac.yaml"
EXAMPLES = ROOT / "examples"
SWITCHYARD = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "switchyard"
ALLOWED_HOSTS = "api.openai.com,*.svc.cluster.local,127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the operator's identity and process -------------------------------------------------


@pytest.fixture(scope="module")
def operator_account(cluster: Cluster) -> tuple[str, Path]:
    """(namespace, kubeconfig) of a ServiceAccount bound to exactly docs/operator-rbac.yaml."""
    namespace = cluster.create_namespace("e2e-switchyard-system")
    suffix = secrets.token_hex(3)
    docs = []
    for doc in yaml.safe_load_all(RBAC.read_text()):
        text = json.dumps(doc).replace("switchyard-system", namespace)
        doc = json.loads(text)
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):  # cluster-wide names: unique
            doc["metadata"]["name"] += f"-{suffix}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += f"-{suffix}"
        docs.append(doc)
    cluster.apply(docs)
    stack.ensure_signing_secret(cluster, namespace)
    return namespace, cluster.service_account_kubeconfig(namespace, "switchyard-operator")


class Operator:
    """One `switchyard operator` process watching one namespace."""

    def __init__(
        self,
        cluster: Cluster,
        account: tuple[str, Path],
        namespace: str,
        log_dir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.namespace = namespace
        sa_namespace, kubeconfig = account
        argv = [
            str(SWITCHYARD),
            "operator",
            "--kubeconfig",
            str(kubeconfig),
            "--namespaces",
            namespace,
            "--liveness-port",
            str(self.port),
            "--liveness-host",
            "127.0.0.1",
            "--allowed-base-url-hosts",
            ALLOWED_HOSTS,
            "--allowed-env-keys",
            "OPENAI_KEY=api.openai.com",
            "--lease-namespace",
            sa_namespace,
            *extra,
        ]
        if "--lease-name" not in extra:
            argv.append("--standalone")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        self.process = ManagedProcess(
            f"operator-{secrets.token_hex(2)}",
            argv,
            log_dir / f"operator-{namespace}-{secrets.token_hex(2)}.log",
            env={**environ, **(env or {})},
        )

    def start(self) -> Operator:
        self.process.start()
        return self

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
        return False

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def start_operator(
    cluster: Cluster, operator_account: tuple[str, Path], namespace: str, tmp_path: Path
) -> Iterator[Callable[..., Operator]]:
    started: list[Operator] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> Operator:
        op = Operator(cluster, operator_account, namespace, tmp_path, *extra, env=env).start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()


# --- cluster helpers ----------------------------------------------------------------------


def get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    done = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(done.stdout) if done.stdout.strip() else None


def example(name: str, namespace: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    return docs


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def reconciled(
    cluster: Cluster, namespace: str, name: str, ready: str = "True", reason: str | None = None
) -> Callable[[], dict[str, Any] | None]:
    """A probe: the endpoint once status follows its generation with the given Ready."""

    def probe() -> dict[str, Any] | None:
        obj = get(cluster, namespace, "gatewayendpoint", name)
        if (
            obj is None
            or obj.get("status", {}).get("observedGeneration") != obj["metadata"]["generation"]
        ):
            return None
        cond = condition(obj, "Ready")
        if cond.get("status") != ready or (reason and cond.get("reason") != reason):
            return None
        return obj

    return probe


def patch_endpoint(cluster: Cluster, namespace: str, ops: list[dict[str, Any]]) -> None:
    """Apply a JSON patch to the `chat` endpoint."""
    cluster.kubectl(
        "patch",
        "gatewayendpoint",
        "chat",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        json.dumps(ops),
    )


def events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    done = cluster.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "-o",
        "json",
        "--field-selector",
        f"involvedObject.name={name}",
    )
    return list(json.loads(done.stdout)["items"])


def setup_chat(cluster: Cluster, namespace: str) -> None:
    cluster.apply(example("00-secrets.yaml", namespace))
    cluster.apply(example("01-ab-split.yaml", namespace))


# --- the tests ----------------------------------------------------------------------------


def test_example_renders_owned_configmap_then_follows_edits(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    op = start_operator()
    setup_chat(cluster, namespace)
    obj = wait_for("chat Ready", reconciled(cluster, namespace, "chat"), context=op.log)
    cm = get(cluster, namespace, "configmap", "gwe-chat")
    assert cm is not None
    meta = cm["metadata"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "switchyard.dev/v1alpha1",
            "kind": "GatewayEndpoint",
            "name": "chat",
            "uid": obj["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "switchyard-operator"
    assert meta["labels"]["switchyard.dev/endpoint"] == "chat"
    expected = normalize(parse_endpoint(obj))
    assert json.loads(cm["data"]["endpoint.json"]) == json.loads(
        expected.model_dump_json(by_alias=True, exclude_none=True)
    )
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"] == 1
    assert status["specHash"] == meta["annotations"]["switchyard.dev/spec-hash"]
    assert status["configMapName"] == "gwe-chat"
    assert status["targets"] == "gpt5:50,claude:50"
    assert status["fallbackCount"] == 2
    for type_ in ("Ready", "Accepted", "ResolvedRefs"):
        assert condition(obj, type_)["status"] == "True"
        assert condition(obj, type_)["observedGeneration"] == 1

    # Kopf's bookkeeping stays in the operator's memory: a handler that succeeded at once
    # leaves no annotation (and cost no PATCH). Kopf would patch right after the handler,
    # so give it a moment to show it does not.
    time.sleep(1.0)
    current = get(cluster, namespace, "gatewayendpoint", "chat") or {}
    annotations = current.get("metadata", {}).get("annotations", {})
    assert not any(k.startswith(("kopf.zalando.org", "switchyard.dev/")) for k in annotations)
    assert op.healthy()

    # Edit the weights: the ConfigMap follows, with a new hash and generation.
    patch_endpoint(
        cluster,
        namespace,
        [
            {"op": "replace", "path": "/spec/trafficSplit/0/weight", "value": 80},
            {"op": "replace", "path": "/spec/trafficSplit/1/weight", "value": 20},
        ],
    )
    obj2 = wait_for("generation 2 Ready", reconciled(cluster, namespace, "chat"), context=op.log)
    cm2 = get(cluster, namespace, "configmap", "gwe-chat")
    assert cm2 is not None
    assert obj2["status"]["observedGeneration"] == 2
    assert obj2["status"]["targets"] == "gpt5:80,claude:20"
    new_hash = cm2["metadata"]["annotations"]["switchyard.dev/spec-hash"]
    assert new_hash != meta["annotations"]["switchyard.dev/spec-hash"]
    assert obj2["status"]["specHash"] == new_hash
    assert json.loads(cm2["data"]["endpoint.json"])["generation"] == 2

    # A baseUrl outside the allow-list: rejected, and the last good ConfigMap untouched.
    patch_endpoint(
        cluster,
        namespace,
        [
            {
                "op": "add",
                "path": "/spec/trafficSplit/0/baseUrl",
                "value": "https://evil.example.com/v1",
            }
        ],
    )
    obj3 = wait_for(
        "generation 3 rejected",
        reconciled(cluster, namespace, "chat", "False", "PolicyViolation"),
        context=op.log,
    )
    ready = condition(obj3, "Ready")
    assert "spec.trafficSplit[0].baseUrl" in ready["message"]
    assert "evil.example.com" in ready["message"]
    assert condition(obj3, "Accepted")["status"] == "False"
    cm3 = get(cluster, namespace, "configmap", "gwe-chat")
    assert cm3 is not None
    assert cm3["metadata"]["resourceVersion"] == cm2["metadata"]["resourceVersion"]
    assert obj3["status"]["specHash"] == new_hash
    reasons = wait_for(
        "a Rejected event",
        lambda: (
            {e["reason"] for e in events(cluster, namespace, "chat")} & {"Rejected"}
            and {e["reason"] for e in events(cluster, namespace, "chat")}
        ),
    )
    # A new endpoint gets one Event (Rendered says it was accepted and its refs resolved).
    assert {"Rendered", "Rejected"} <= reasons
    assert "Accepted" not in reasons


def test_deleted_secret_is_reported_and_configmap_stays(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    op = start_operator()
    setup_chat(cluster, namespace)
    wait_for("chat Ready", reconciled(cluster, namespace, "chat"), context=op.log)
    cm = get(cluster, namespace, "configmap", "gwe-chat")
    assert cm is not None
    cluster.kubectl("delete", "secret", "anthropic-key", "-n", namespace)
    obj = wait_for(
        "ResolvedRefs=False",
        reconciled(cluster, namespace, "chat", "False", "UnresolvedRefs"),
        context=op.log,
    )
    refs = condition(obj, "ResolvedRefs")
    assert refs["status"] == "False" and refs["reason"] == "SecretNotFound"
    assert f"Secret {namespace}/anthropic-key (key 'api-key'" in refs["message"]
    assert "sk-ant" not in json.dumps(obj)
    event = wait_for(
        "a SecretNotFound event",
        lambda: [e for e in events(cluster, namespace, "chat") if e["reason"] == "SecretNotFound"],
    )
    assert "anthropic-key" in event[0]["message"] and event[0]["type"] == "Warning"
    after = get(cluster, namespace, "configmap", "gwe-chat")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]

    # An unlabelled Secret is named with the command that fixes it.
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "anthropic-key",
        "-n",
        namespace,
        "--from-literal=api-key=sk-ant-secret-value",
    )
    cluster.kubectl("annotate", "gatewayendpoint", "chat", "-n", namespace, "poke=1")
    obj = wait_for(
        "SecretNotLabelled",
        lambda: (
            (o := get(cluster, namespace, "gatewayendpoint", "chat"))
            and condition(o, "ResolvedRefs").get("reason") == "SecretNotLabelled"
            and o
        ),
        context=op.log,
    )
    message = condition(obj, "ResolvedRefs")["message"]
    assert (
        f"kubectl label secret anthropic-key -n {namespace} switchyard.dev/credential=true"
        in message
    )
    # Labelling it is seen through the label-selected watch, and the refs resolve.
    cluster.kubectl(
        "label", "secret", "anthropic-key", "-n", namespace, "switchyard.dev/credential=true"
    )
    obj = wait_for("Ready again", reconciled(cluster, namespace, "chat"), context=op.log)
    assert condition(obj, "ResolvedRefs")["status"] == "True"
    secret = get(cluster, namespace, "secret", "anthropic-key")
    assert secret is not None
    assert set(secret["metadata"].get("annotations") or {}) == set()  # nothing written on it
    assert "sk-ant-secret-value" not in op.log()


def test_foreign_configmap_is_not_adopted(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    cluster.kubectl("create", "configmap", "gwe-chat", "-n", namespace, "--from-literal=x=1")
    before = get(cluster, namespace, "configmap", "gwe-chat")
    assert before is not None
    op = start_operator()
    setup_chat(cluster, namespace)
    obj = wait_for(
        "ConfigMapConflict",
        reconciled(cluster, namespace, "chat", "False", "ConfigMapConflict"),
        context=op.log,
    )
    assert "not owned by this GatewayEndpoint" in condition(obj, "Ready")["message"]
    after = get(cluster, namespace, "configmap", "gwe-chat")
    assert after == before


def test_deleting_the_endpoint_collects_its_configmap(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    op = start_operator()
    setup_chat(cluster, namespace)
    wait_for("chat Ready", reconciled(cluster, namespace, "chat"), context=op.log)
    assert get(cluster, namespace, "configmap", "gwe-chat") is not None
    cluster.kubectl("delete", "gatewayendpoint", "chat", "-n", namespace)
    wait_for(
        "garbage collection of gwe-chat",
        lambda: get(cluster, namespace, "configmap", "gwe-chat") is None,
    )


def test_restart_writes_nothing_and_no_condition_flaps(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    op = start_operator()
    setup_chat(cluster, namespace)
    cluster.kubectl("delete", "secret", "mistral-key", "-n", namespace)
    cluster.apply(example("05-self-hosted.yaml", namespace))  # now references a missing Secret
    first = wait_for("chat Ready", reconciled(cluster, namespace, "chat"), context=op.log)
    llama = wait_for(
        "llama rendered",
        reconciled(cluster, namespace, "llama", "False", "UnresolvedRefs"),
        context=op.log,
    )
    cms = {n: get(cluster, namespace, "configmap", f"gwe-{n}") for n in ("chat", "llama")}
    op.stop()
    time.sleep(1.1)  # so that a rewritten lastTransitionTime would differ (second precision)
    op2 = start_operator()
    # Kopf's diff base lived in the old process's memory: to the new one every endpoint is
    # new ("Creation"), and the one handler reconciles it all the same.
    wait_for(
        "both endpoints handled again",
        lambda: op2.log().count("Creation is processed") + op2.log().count(
            "Resuming is processed") >= 2,
        context=op2.log,
    )
    for name, before in cms.items():
        after = get(cluster, namespace, "configmap", f"gwe-{name}")
        assert before is not None and after is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    for old in (first, llama):
        new = get(cluster, namespace, "gatewayendpoint", old["metadata"]["name"])
        assert new is not None
        assert new["status"] == old["status"]


def test_two_replicas_one_leader(
    cluster: Cluster, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    lease = f"lease-{namespace}"
    first = start_operator("--lease-name", lease, "--lease-duration", "6")
    wait_for("a leader", lambda: "leading via Lease" in first.log(), context=first.log)
    second = start_operator("--lease-name", lease, "--lease-duration", "6")
    wait_for("the standby waiting", lambda: "waiting to lead" in second.log(), context=second.log)
    assert wait_for("standby liveness", second.healthy)
    setup_chat(cluster, namespace)
    wait_for("chat Ready", reconciled(cluster, namespace, "chat"), context=first.log)
    assert "leading via Lease" not in second.log()
    first.stop()
    wait_for("the standby leading", lambda: "leading via Lease" in second.log(), context=second.log)
    cluster.apply(example("05-self-hosted.yaml", namespace))
    wait_for(
        "llama reconciled by the new leader",
        reconciled(cluster, namespace, "llama"),
        context=second.log,
    )


def test_the_lease_goes_with_the_last_operator_pod(
    cluster: Cluster, namespace: str, operator_account: tuple[str, Path],
    start_operator: Callable[..., Operator],
) -> None:
    """`helm uninstall` must leave no Lease behind: the leader makes its Pod the Lease's
    owner, and the garbage collector removes the Lease once that Pod is gone. (No node
    here: the Pod object is only an owner, never scheduled.)"""
    sa_namespace, _ = operator_account
    lease_name = f"lease-{namespace}"
    cluster.apply([{"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "operator-pod", "namespace": sa_namespace},
                    "spec": {"containers": [{"name": "op", "image": "switchyard:none"}]}}])
    pod = get(cluster, sa_namespace, "pod", "operator-pod")
    assert pod is not None
    op = start_operator("--lease-name", lease_name, "--lease-duration", "6",
                        env={"POD_NAME": "operator-pod", "POD_UID": pod["metadata"]["uid"]})
    wait_for("a leader", lambda: "leading via Lease" in op.log(), context=op.log)
    lease = get(cluster, sa_namespace, "lease", lease_name)
    assert lease is not None
    assert [(r["kind"], r["uid"]) for r in lease["metadata"]["ownerReferences"]] == [
        ("Pod", pod["metadata"]["uid"])]
    op.stop()
    cluster.kubectl("delete", "pod", "operator-pod", "-n", sa_namespace, "--grace-period=0",
                    "--force")
    wait_for("the Lease collected with its Pod",
             lambda: get(cluster, sa_namespace, "lease", lease_name) is None)


def test_an_operator_upgrade_rerenders_every_configmap(
    cluster: Cluster, namespace: str, operator_account: tuple[str, Path],
    start_operator: Callable[..., Operator],
) -> None:
    """ConfigMaps written by the previous operator (the payload one schema version back,
    with that version's hash, validly signed: ours, only old) are all rewritten when the
    new operator starts, even though no spec changed. Without it, two schema bumps later
    new gateway pods would refuse every ConfigMap."""
    import base64

    from switchyard_schema import signing
    from switchyard_schema.normalize import spec_hash

    op = start_operator()
    setup_chat(cluster, namespace)
    cluster.apply(example("03-single-model-fallbacks.yaml", namespace))
    names = ["chat", "summarize"]
    for name in names:
        wait_for(f"{name} Ready", reconciled(cluster, namespace, name), context=op.log)
    op.stop()
    sa_namespace, _ = operator_account
    secret = get(cluster, sa_namespace, "secret", stack.SIGNING_SECRET)
    assert secret is not None
    key = base64.b64decode(secret["data"]["current"])
    current: dict[str, str] = {}
    for name in names:  # what the operator one schema version back left behind
        cm = get(cluster, namespace, "configmap", f"gwe-{name}")
        assert cm is not None
        current[name] = cm["data"]["endpoint.json"]
        payload = json.loads(current[name])
        spec = {k: payload[k] for k in ("task", "trafficSplit", "fallbacks", "policy")}
        payload["schemaVersion"] -= 1
        payload["specHash"] = spec_hash({"schemaVersion": payload["schemaVersion"], **spec})
        old = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        owner = cm["metadata"]["ownerReferences"][0]
        cm["data"]["endpoint.json"] = old
        cm["metadata"]["annotations"]["switchyard.dev/spec-hash"] = payload["specHash"]
        cm["metadata"]["annotations"][signing.ANNOTATION] = signing.sign(
            key, namespace, name, owner["uid"], old.encode())
        cluster.kubectl("replace", "-f", "-", input=json.dumps(cm))
    start_operator()

    def rerendered() -> bool:
        for name in names:
            cm = get(cluster, namespace, "configmap", f"gwe-{name}")
            if cm is None or cm["data"]["endpoint.json"] != current[name]:
                return False
        return True

    wait_for("every ConfigMap re-rendered at the current schema version", rerendered)


def _endpoint(namespace: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "GatewayEndpoint",
        "metadata": {"name": f"ep-{i:03d}", "namespace": namespace},
        "spec": {
            "trafficSplit": [
                {
                    "name": "a",
                    "provider": "openai-compatible",
                    "model": f"m-{i}",
                    "weight": 60,
                    "baseUrl": "http://vllm-a.models.svc.cluster.local:8000/v1",
                },
                {
                    "name": "b",
                    "provider": "openai-compatible",
                    "model": f"m-{i}",
                    "weight": 40,
                    "baseUrl": "http://vllm-b.models.svc.cluster.local:8000/v1",
                },
            ]
        },
    }


@pytest.mark.slow
@pytest.mark.skipif(
    bool(os.environ.get("SWITCHYARD_E2E_SKIP_SCALE")), reason="SWITCHYARD_E2E_SKIP_SCALE is set"
)
def test_200_endpoints_reach_ready(
    cluster: Cluster,
    namespace: str,
    start_operator: Callable[..., Operator],
    record_property: Callable[[str, object], None],
) -> None:
    count = int(os.environ.get("SWITCHYARD_E2E_SCALE_COUNT", "200"))
    op = start_operator()
    wait_for("operator up", op.healthy, context=op.log)
    manifests = [_endpoint(namespace, i) for i in range(count)]
    started = time.monotonic()
    cluster.apply(manifests)

    def all_ready() -> bool:
        items = json.loads(
            cluster.kubectl("get", "gatewayendpoints", "-n", namespace, "-o", "json").stdout
        )["items"]
        return len(items) == count and all(
            condition(o, "Ready").get("status") == "True" for o in items
        )

    wait_for(f"{count} endpoints Ready", all_ready, timeout=600, context=op.log)
    elapsed = time.monotonic() - started
    record_property("endpoints_ready_seconds", round(elapsed, 2))
    print(f"\n[scale] {count} GatewayEndpoints applied at once: all Ready in {elapsed:.1f}s")
    cms = cluster.kubectl(
        "get",
        "configmaps",
        "-n",
        namespace,
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/managed-by=switchyard-operator",
    ).stdout
    assert len(cms.split()) == count
