"""Which Secrets and keys an endpoint references, and what is wrong with them.

Called by `reconcile.py` (and by the Secret index in `handlers.py`). Pure: the caller says
what it found about each Secret; this module turns that into the `ResolvedRefs` verdict.
Messages name the Secret and the key, never a value, and give the `kubectl label` command
that fixes an unlabelled Secret.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from typing import Any

from switchyard_schema import contract

#: A Secret's name is a DNS-1123 subdomain (the CRD's `secretKeyRef.name` pattern).
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def valid_name(name: str) -> bool:
    """True for a possible Secret name: no `/`, `..` or anything else a path could use."""
    return len(name) <= 253 and _SECRET_NAME.fullmatch(name) is not None


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class SecretRef:
    """One key of one Secret, with the field path that references it."""

    name: str
    key: str
    path: str


def secret_refs(spec: Any) -> list[SecretRef]:
    """Every `apiKey.secretKeyRef` of a spec, in spec order (tolerates malformed specs)."""
    out: list[SecretRef] = []
    if not isinstance(spec, dict):
        return out
    for field in ("trafficSplit", "fallbacks"):
        items = spec.get(field)
        if not isinstance(items, list):
            continue
        for i, target in enumerate(items):
            api_key = target.get("apiKey") if isinstance(target, dict) else None
            ref = api_key.get("secretKeyRef") if isinstance(api_key, dict) else None
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                out.append(
                    SecretRef(ref["name"], str(ref.get("key", "")), f"spec.{field}[{i}].apiKey")
                )
    return out


def secret_names(spec: Any) -> frozenset[str]:
    """The names of the Secrets a spec references."""
    return frozenset(r.name for r in secret_refs(spec))


class Found(enum.Enum):
    """What the operator found about one Secret."""

    MISSING = "missing"
    UNLABELLED = "unlabelled"
    LABELLED = "labelled"


@dataclasses.dataclass(frozen=True, slots=True)
class SecretState:
    """A Secret as seen by the operator: labelled or not, and its key names (never values)."""

    found: Found
    #: Key names of a labelled Secret; None when unknown (then every key is assumed present).
    keys: frozenset[str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Unresolved:
    """One reference that cannot be resolved, with its reason and message."""

    ref: SecretRef
    reason: str
    message: str


def resolve(
    namespace: str, refs: list[SecretRef], found: Mapping[str, SecretState]
) -> list[Unresolved]:
    """The references that do not resolve, one per (Secret, key), in spec order."""
    out: list[Unresolved] = []
    seen: set[tuple[str, str]] = set()
    for ref in refs:
        if (ref.name, ref.key) in seen:
            continue
        seen.add((ref.name, ref.key))
        state = found.get(ref.name, SecretState(Found.MISSING))
        problem = _problem(namespace, ref, state)
        if problem is not None:
            out.append(problem)
    return out


def _problem(namespace: str, ref: SecretRef, state: SecretState) -> Unresolved | None:
    where = f"Secret {namespace}/{ref.name} (key {ref.key!r}, referenced at {ref.path})"
    if state.found is Found.MISSING:
        return Unresolved(ref, "SecretNotFound", f"{where} does not exist")
    if state.found is Found.UNLABELLED:
        fix = f"kubectl label secret {ref.name} -n {namespace} {contract.CREDENTIAL_SELECTOR}"
        return Unresolved(
            ref,
            "SecretNotLabelled",
            f"{where} lacks the label {contract.CREDENTIAL_SELECTOR}, so the gateway cannot"
            " see it;"
            f" fix: {fix}",
        )
    if state.keys is not None and ref.key not in state.keys:
        return Unresolved(ref, "SecretKeyNotFound", f"{where} has no key {ref.key!r}")
    return None


def describe(unresolved: list[Unresolved]) -> tuple[str, str]:
    """(reason, message) for a `ResolvedRefs=False` condition: the first reason, all messages."""
    return unresolved[0].reason, "; ".join(u.message for u in unresolved)
