"""The GatewayEndpoint API as the real API server serves it, driven through the real kubectl.

The CRD is accepted at all (CEL compiles and fits the cost budget: the `cluster` fixture
installs it); examples/ is accepted; the shared validation table (tests/cases/validation)
gets the expected verdict and message at admission, and every verdict equals the offline
validator's (`switchyard_schema.validate_manifest`): the parity proof DESIGN.md asks for.
Then what users see: printer columns, `kubectl explain`, and the status subresource.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchyard_schema import validate_manifest
from switchyard_testing.cluster import Cluster
from tests.casetable import Case, cases

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CRD_NAME = "gatewayendpoints.switchyard.dev"

ENDPOINT = """
apiVersion: switchyard.dev/v1alpha1
kind: GatewayEndpoint
metadata: {name: chat}
spec:
  task: chat
  trafficSplit:
  - {name: gpt5, provider: openai, model: gpt-5, weight: 70, apiKey: {envVar: OPENAI_API_KEY}}
  - {name: mini, provider: openai, model: gpt-5-mini, weight: 30, apiKey: {envVar: OPENAI_API_KEY}}
"""


def create(cluster: Cluster, namespace: str, manifest: str | dict[str, Any]) -> tuple[bool, str]:
    """Create one object as a user would; (accepted, kubectl's stderr)."""
    text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
    done = cluster.kubectl("create", "-n", namespace, "-f", "-", input=text, check=False)
    return done.returncode == 0, done.stderr


def test_crd_is_established_with_its_names(cluster: Cluster) -> None:
    crd = json.loads(cluster.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert conditions.get("NonStructuralSchema", "False") == "False"
    resources = cluster.kubectl("api-resources", "--api-group=switchyard.dev", "-o", "wide")
    row = resources.stdout.splitlines()[1].split()
    assert row[:5] == [
        "gatewayendpoints",
        "gwe",
        "switchyard.dev/v1alpha1",
        "true",
        "GatewayEndpoint",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_accepted(cluster: Cluster, namespace: str, path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs, f"{path.name} holds no manifest"
    for doc in docs:
        if doc["kind"] == "Namespace":  # each test has its own namespace: check, don't create
            cluster.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))
            continue
        doc["metadata"]["namespace"] = namespace  # kubectl -n cannot override a written one
        if doc["apiVersion"].startswith("switchyard.dev/"):
            assert validate_manifest(doc) == []
        cluster.apply([doc])
        kind, name = doc["kind"].lower(), doc["metadata"]["name"]
        cluster.kubectl("get", kind, name, "-n", namespace)


def test_validation_table_is_present() -> None:
    assert len(cases(valid=False)) >= 30
    assert len(cases(valid=True)) >= 5


@pytest.mark.parametrize("case", cases(valid=False), ids=lambda c: c.name)
def test_invalid_manifest_is_rejected_at_admission(
    cluster: Cluster, namespace: str, case: Case
) -> None:
    text = (ROOT / "tests/cases/validation/invalid" / f"{case.name}.yaml").read_text()
    accepted, stderr = create(cluster, namespace, text)
    assert not accepted, f"the API server accepted {case.name}"
    assert case.apiserver in stderr, stderr
    assert validate_manifest(case.manifest) != [], "offline validator disagrees: it accepts"


@pytest.mark.parametrize("case", cases(valid=True), ids=lambda c: c.name)
def test_valid_manifest_is_accepted(cluster: Cluster, namespace: str, case: Case) -> None:
    accepted, stderr = create(cluster, namespace, case.manifest)
    assert accepted, stderr
    assert validate_manifest(case.manifest) == []


def _random_target(rng: random.Random, names: list[str]) -> dict[str, Any]:
    """A target that is often valid and sometimes breaks one rule or another."""
    provider = rng.choice(
        ["openai", "openai", "anthropic", "gemini", "mistral", "azure-openai", "openai-compatible"]
    )
    target: dict[str, Any] = {"provider": provider, "model": rng.choice(["m1", "m2"])}
    if rng.random() < 0.5:
        target["name"] = rng.choice(names)
    needs_url = provider in ("openai-compatible", "azure-openai")
    if (needs_url or rng.random() < 0.15) and rng.random() < 0.9:
        target["baseUrl"] = rng.choice(["http://vllm:8000/v1", "https://x.openai.azure.com"])
    if (provider == "azure-openai" and rng.random() < 0.9) or rng.random() < 0.05:
        target["azure"] = {"deployment": "d1"}
    if (provider != "openai-compatible" and rng.random() < 0.95) or rng.random() < 0.5:
        target["apiKey"] = rng.choice(
            [{"envVar": "K1"}, {"envVar": "K2"}, {"secretKeyRef": {"name": "s", "key": "k"}}]
        )
    return target


def _random_endpoint(rng: random.Random, i: int) -> dict[str, Any]:
    names = [f"t{n}" for n in range(rng.choice([3, 30]))]
    split = [_random_target(rng, names) for _ in range(rng.choice([1, 1, 2, 2, 3, 4, 17]))]
    weights = [100 // len(split)] * len(split)
    weights[0] += 100 - sum(weights)
    if rng.random() < 0.3:
        weights[rng.randrange(len(weights))] += rng.choice([-1, 1, 5, -200])
    for target, weight in zip(split, weights, strict=True):
        target["weight"] = weight
    spec: dict[str, Any] = {"trafficSplit": split}
    if rng.random() < 0.7:
        spec["fallbacks"] = [_random_target(rng, names) for _ in range(rng.choice([1, 2, 3, 11]))]
    if rng.random() < 0.6:
        spec["task"] = rng.choice(["chat", "completions", "embeddings"])
    if rng.random() < 0.3:
        spec["policy"] = {
            "attemptTimeoutSeconds": rng.choice([10, 60, 200]),
            "requestTimeoutSeconds": rng.choice([30, 120]),
        }
    return {
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "GatewayEndpoint",
        "metadata": {"name": f"random-{i}"},
        "spec": spec,
    }


def test_random_manifests_get_the_same_verdict_offline_and_at_admission(
    cluster: Cluster, namespace: str
) -> None:
    """Beyond the table: seeded random endpoints that mix valid and broken targets."""
    rng = random.Random(20260101)
    disagreements, verdicts = [], []
    for i in range(60):
        manifest = _random_endpoint(rng, i)
        accepted, stderr = create(cluster, namespace, manifest)
        offline = [str(p) for p in validate_manifest(manifest)]
        verdicts.append(accepted)
        if accepted != (not offline):
            disagreements.append((manifest["spec"], stderr.strip(), offline))
    assert disagreements == []
    assert 10 <= sum(verdicts) <= 50, "the generator should mix valid and invalid manifests"


def test_get_shows_the_printer_columns(cluster: Cluster, namespace: str) -> None:
    cluster.apply(ENDPOINT, namespace)
    table = cluster.kubectl("get", "gwe", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "TASK", "TARGETS", "FALLBACKS", "READY", "SERVING",
                                "DEGRADED", "AGE"]
    assert table[1].split()[:2] == ["chat", "chat"]


def test_task_column_is_never_blank(cluster: Cluster, namespace: str) -> None:
    """`task` omitted: the API server fills its default, so TASK shows chat, not nothing."""
    cluster.apply(ENDPOINT.replace("  task: chat\n", ""), namespace)
    stored = cluster.kubectl("get", "gwe", "chat", "-n", namespace, "-o",
                             "jsonpath={.spec.task}").stdout
    assert stored == "chat"
    row = cluster.kubectl("get", "gwe", "chat", "-n", namespace, "--no-headers").stdout.split()
    assert row[:2] == ["chat", "chat"]


def test_explain_shows_the_field_docs(cluster: Cluster) -> None:
    weight = cluster.kubectl("explain", "gwe.spec.trafficSplit.weight").stdout
    assert "FIELD: weight <integer>" in weight
    assert "must sum to exactly 100" in weight
    split = cluster.kubectl("explain", "gatewayendpoints.spec.trafficSplit").stdout
    assert "provider\t<string> -required-" in split


def _status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    got = cluster.kubectl("get", "gwe", "chat", "-n", namespace, "-o", "json").stdout
    status: dict[str, Any] = json.loads(got).get("status", {})
    return status


def test_status_is_written_only_through_its_subresource(cluster: Cluster, namespace: str) -> None:
    cluster.apply(ENDPOINT, namespace)
    patch = json.dumps({"status": {"targets": "gpt5:70,mini:30", "fallbackCount": 0}})

    cluster.kubectl("patch", "gwe", "chat", "-n", namespace, "--type=merge", "-p", patch)
    assert _status(cluster, namespace) == {}

    cluster.kubectl(
        "patch", "gwe", "chat", "-n", namespace, "--type=merge", "-p", patch, "--subresource=status"
    )
    assert _status(cluster, namespace) == {"targets": "gpt5:70,mini:30", "fallbackCount": 0}
    row = cluster.kubectl("get", "gwe", "chat", "-n", namespace, "--no-headers").stdout.split()
    assert row[1:4] == ["chat", "gpt5:70,mini:30", "0"]


def test_status_write_does_not_bump_the_generation(cluster: Cluster, namespace: str) -> None:
    cluster.apply(ENDPOINT, namespace)
    before = cluster.kubectl(
        "get", "gwe", "chat", "-n", namespace, "-o", "jsonpath={.metadata.generation}"
    ).stdout
    cluster.kubectl(
        "patch",
        "gwe",
        "chat",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"status": {"observedGeneration": 1}}',
        "--subresource=status",
    )
    after = cluster.kubectl(
        "get", "gwe", "chat", "-n", namespace, "-o", "jsonpath={.metadata.generation}"
    ).stdout
    assert before == after == "1"
