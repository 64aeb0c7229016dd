"""Render a GatewayEndpoint's ConfigMap (DESIGN.md "The rendered ConfigMap").

Called by `reconcile.py` and by `switchyard render`. `configmap()` is pure and byte-stable:
the same endpoint always gives the same manifest, so `switchyard render` prints exactly what
the operator creates minus the runtime fields that `with_runtime_fields()` adds (the
controller ownerReference, the render timestamp and the signature, which needs the endpoint's
UID and the operator's signing key: `switchyard_schema.signing`). Never holds provider key
material: the config only carries references to Secrets and env vars.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

from switchyard_schema import (
    API_VERSION,
    KIND,
    EndpointConfig,
    GatewayEndpoint,
    config_json,
    contract,
    signing,
)

#: The names live in `switchyard_schema.contract` (the gateway reads them from there too).
configmap_name = contract.configmap_name


def configmap(endpoint: GatewayEndpoint, config: EndpointConfig) -> dict[str, Any]:
    """The ConfigMap manifest of a normalised endpoint, without runtime fields (pure)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(endpoint.name),
            "namespace": endpoint.namespace,
            "labels": {
                contract.MANAGED_BY_LABEL: contract.MANAGER,
                contract.ENDPOINT_LABEL: endpoint.name,
            },
            "annotations": {contract.SPEC_HASH_ANNOTATION: config.spec_hash},
        },
        "data": {contract.DATA_KEY: config_json(config)},
    }


def rfc3339_now(now: datetime.datetime | None = None) -> str:
    """UTC time in RFC 3339 with microseconds, e.g. `2025-01-02T03:04:05.123456Z`."""
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def owner_reference(endpoint: GatewayEndpoint) -> dict[str, Any]:
    """The controller ownerReference that makes deletion of the endpoint collect the map."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": endpoint.name,
        "uid": endpoint.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def with_runtime_fields(
    manifest: dict[str, Any], endpoint: GatewayEndpoint, rendered_at: str, key: bytes
) -> dict[str, Any]:
    """A copy of `manifest` with the ownerReference, render timestamp and signature."""
    out = copy.deepcopy(manifest)
    out["metadata"]["ownerReferences"] = [owner_reference(endpoint)]
    out["metadata"]["annotations"][contract.RENDERED_AT_ANNOTATION] = rendered_at
    payload = out["data"][contract.DATA_KEY].encode()
    out["metadata"]["annotations"][signing.ANNOTATION] = signing.sign(
        key, endpoint.namespace, endpoint.name, endpoint.uid, payload
    )
    return out


def drift(existing: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """What differs between the live ConfigMap and the desired one (empty: nothing to do).

    Compares everything the gateway relies on (data, our labels, spec hash and signature,
    ownerReferences); not the render timestamp, nor labels or annotations others added.
    """
    out: list[str] = []
    live, want = existing.get("metadata") or {}, desired["metadata"]
    if (existing.get("data") or {}) != desired["data"] or existing.get("binaryData"):
        out.append("data")
    labels = live.get("labels") or {}
    out += [f"label {k}" for k, v in want["labels"].items() if labels.get(k) != v]
    annotations = live.get("annotations") or {}
    out += [
        f"annotation {k}"
        for k in (contract.SPEC_HASH_ANNOTATION, signing.ANNOTATION)
        if annotations.get(k) != want["annotations"][k]
    ]
    if (live.get("ownerReferences") or []) != want["ownerReferences"]:
        out.append("ownerReferences")
    return out


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The UID named by an object's controller ownerReference, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


#: Differences a newer render of our own explains (anything else was done by someone else).
_OWN_CHANGES = frozenset({
    "data", f"annotation {contract.SPEC_HASH_ANNOTATION}", f"annotation {signing.ANNOTATION}"
})


def tampered(
    existing: dict[str, Any],
    endpoint: GatewayEndpoint,
    keys: signing.SigningKeys,
    changed: list[str],
) -> bool:
    """True when the live ConfigMap was changed by someone else, not just rendered earlier.

    Ours-but-stale means: nothing but data, hash or signature differs, and the signature
    verifies over its data under an accepted key, or there is none and only it is missing
    (a render of an operator from before signatures).
    """
    if not set(changed) <= _OWN_CHANGES:
        return True
    meta = existing.get("metadata") or {}
    signature = str((meta.get("annotations") or {}).get(signing.ANNOTATION, ""))
    if not signature and changed == [f"annotation {signing.ANNOTATION}"]:
        return False
    payload = str((existing.get("data") or {}).get(contract.DATA_KEY, "")).encode()
    return not signing.verify(
        keys, endpoint.namespace, endpoint.name, endpoint.uid, payload, signature
    )


def intact(configmap: dict[str, Any], keys: signing.SigningKeys) -> bool:
    """True when a live ConfigMap is exactly as this operator signed it (no repair needed).

    Checks our labels, the controller ownerReference, the signature over the payload for
    that owner, and that the hash annotation is the payload's own. Spares the API server a
    reconciliation for every event that the operator's own writes cause.
    """
    meta = configmap.get("metadata") or {}
    owner = next(
        (
            r
            for r in meta.get("ownerReferences") or []
            if r.get("controller") and r.get("kind") == KIND
        ),
        None,
    )
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    payload = str((configmap.get("data") or {}).get(contract.DATA_KEY, ""))
    if (
        owner is None
        or labels.get(contract.MANAGED_BY_LABEL) != contract.MANAGER
        or labels.get(contract.ENDPOINT_LABEL) != owner.get("name")
        or meta.get("name") != configmap_name(str(owner.get("name")))
    ):
        return False
    try:
        spec_hash = json.loads(payload).get("specHash")
    except (ValueError, AttributeError):
        return False
    return annotations.get(contract.SPEC_HASH_ANNOTATION) == spec_hash and signing.verify(
        keys,
        str(meta.get("namespace")),
        str(owner.get("name")),
        str(owner.get("uid")),
        payload.encode(),
        str(annotations.get(signing.ANNOTATION, "")),
    )
