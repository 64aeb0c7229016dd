"""The demo overlay: `examples/01-ab-split.yaml` with every target pointed at a loopback fake.

The example stays a real-provider manifest; this module copies it and rewrites only what
a machine without provider accounts needs: each target's `baseUrl` (one fake per target,
so the demo can fail exactly one), the split weights when the demo re-weights, and a short
cooldown so a recovered target is back within one demo phase. The Secrets it references
get fake keys that the fakes check, so the key path through the cluster is exercised too.
Pure functions: no I/O besides reading the example.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from switchyard_schema import contract

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "01-ab-split.yaml"
#: Short enough that a target healed at the start of a phase serves again within it.
# Probes at most every 2 s (`maxProbeIntervalSeconds`: `maxSeconds` caps only a provider's
# Retry-After), so a recovered target is back within one phase.
DEMO_COOLDOWN = {"failureThreshold": 3, "seconds": 1, "maxSeconds": 2,
                 "maxProbeIntervalSeconds": 2}


@dataclasses.dataclass(frozen=True, slots=True)
class TargetInfo:
    """One target of the example, in routing order."""

    name: str
    provider: str
    model: str
    role: str  # "split" or "fallback"
    position: int  # 1-based within its list
    weight: int | None
    secret: str  # the Secret holding its key


def load_example(path: Path = EXAMPLE) -> dict[str, Any]:
    """The GatewayEndpoint document of the example file."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "GatewayEndpoint":
            return dict(doc)
    raise ValueError(f"{path}: no GatewayEndpoint")


def target_name(target: Mapping[str, Any]) -> str:
    """A target's name as the gateway reports it (the CRD's default `<provider>-<model>`)."""
    return str(target.get("name") or f"{target['provider']}-{target['model']}")


def targets(endpoint: Mapping[str, Any]) -> list[TargetInfo]:
    """Every target of `endpoint`: the split first, then the fallbacks in order."""
    spec = endpoint["spec"]
    out = []
    for role, entries in (("split", spec["trafficSplit"]), ("fallback", spec.get("fallbacks", []))):
        for i, t in enumerate(entries):
            out.append(TargetInfo(
                name=target_name(t), provider=t["provider"], model=t["model"], role=role,
                position=i + 1, weight=t.get("weight") if role == "split" else None,
                secret=t["apiKey"]["secretKeyRef"]["name"]))
    return out


def fake_key(secret: str) -> str:
    """The fake key the demo stores in Secret `secret` (and the fakes expect)."""
    return f"demo-{secret}-not-a-real-key"


def overlay(endpoint: Mapping[str, Any], base_urls: Mapping[str, str],
            weights: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A copy of `endpoint` whose targets call `base_urls[target name]`, with `weights`
    (by split target name) applied and the demo cooldown. Raises KeyError for a target
    without a base URL."""
    doc = copy.deepcopy(dict(endpoint))
    spec = doc["spec"]
    for t in [*spec["trafficSplit"], *spec.get("fallbacks", [])]:
        t["baseUrl"] = base_urls[target_name(t)]
    for t in spec["trafficSplit"]:
        if weights is not None:
            t["weight"] = weights[target_name(t)]
    spec.setdefault("policy", {})["cooldown"] = dict(DEMO_COOLDOWN)
    return doc


def secrets(endpoint: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The labelled Secrets the endpoint references, holding fake keys."""
    namespace = endpoint["metadata"]["namespace"]
    refs: dict[str, set[str]] = {}
    spec = endpoint["spec"]
    for t in [*spec["trafficSplit"], *spec.get("fallbacks", [])]:
        ref = t["apiKey"]["secretKeyRef"]
        refs.setdefault(ref["name"], set()).add(ref["key"])
    return [{"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": name, "namespace": namespace,
                          "labels": {contract.CREDENTIAL_LABEL: contract.CREDENTIAL_VALUE}},
             "stringData": {key: fake_key(name) for key in sorted(keys)}}
            for name, keys in sorted(refs.items())]
