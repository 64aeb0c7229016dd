"""Config churn and operator restarts against the real cluster, under load.

- 30 weight/target changes applied with kubectl while traffic flows through the in-cluster
  gateway: every request succeeds, and every response comes from one complete config
  version (each version names its targets and models after itself, so a half-applied
  config — one version's target with another's model — would show).
- The operator killed (SIGKILL) twice in a burst of changes: the endpoint converges to the
  last spec, Ready, with the rendered payload equal to `switchyard render`'s.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from typing import Any

from switchyard_schema import normalize, parse_endpoint
from tests.e2e.support import System, wait_for

VERSIONS = 30


def versioned(s: System, version: int) -> dict[str, Any]:
    """Version `version`: two arms named and modelled after the version."""
    weight = 10 + (version * 37) % 81
    split = []
    for fake, w in (("a", weight), ("b", 100 - weight)):
        target = s.target(fake, w)
        target["name"] = f"v{version}-{fake}"
        target["model"] = f"model-v{version}-{fake}"
        split.append(target)
    return {
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
        "metadata": {"name": "churn", "namespace": s.namespace},
        "spec": {"trafficSplit": split},
    }


def test_churn_under_load_never_serves_a_half_applied_config(system: System) -> None:
    s = system
    s.cluster.apply([versioned(s, 0)])
    wait_for("churn served", s.serving("churn"), context=s.logs)
    outcomes: collections.Counter[str] = collections.Counter()
    mixed: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            raw = s.client.chat.completions.with_raw_response.create(
                model="churn", messages=[{"role": "user", "content": "hi"}])
            target = raw.headers["x-switchyard-target"]
            text = raw.parse().choices[0].message.content or ""
            served = re.search(r"model-v(\d+)-([ab])", text)
            version = re.fullmatch(r"v(\d+)-([ab])", target)
            if not served or not version or served.groups() != version.groups():
                mixed.append(f"{target}: {text}")
            outcomes[str(raw.status_code)] += 1

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        for version in range(1, VERSIONS + 1):
            s.cluster.apply([versioned(s, version)])
        wait_for("last version served", lambda: any(
            s.chat("churn")[1].get("x-switchyard-target", "").startswith(f"v{VERSIONS}-")
            for _ in range(5)), context=s.logs)
    finally:
        stop.set()
        thread.join(30)
    assert mixed == []
    assert set(outcomes) == {"200"} and sum(outcomes.values()) > 50, outcomes


def test_operator_killed_during_a_burst_of_changes_converges(system: System) -> None:
    s = system
    last: dict[str, Any] = {}
    for version in range(12):
        last = versioned(s, version)
        s.cluster.apply([last])
        if version in (3, 8):
            s.operator.process.kill()
            s.operator.start()
    expected = normalize(parse_endpoint(json.loads(json.dumps(last)))).spec_hash

    def converged() -> bool:
        done = s.cluster.kubectl("get", "gatewayendpoint", "churn", "-n", s.namespace,
                                 "-o", "json")
        obj = json.loads(done.stdout)
        status = obj.get("status") or {}
        ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
        return (status.get("observedGeneration") == obj["metadata"]["generation"]
                and bool(ready) and ready[0]["status"] == "True"
                and status.get("specHash") == expected and s.configmap_hash("churn") == expected)

    wait_for("converged on the last spec", converged, context=s.logs)
    wait_for("last spec served", lambda: s.chat("churn")[1].get(
        "x-switchyard-target", "").startswith("v11-"), context=s.logs)
