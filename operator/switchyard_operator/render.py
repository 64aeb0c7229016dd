"""Render a GatewayEndpoint's ConfigMap (DESIGN.md "The rendered ConfigMap").

Called by `reconcile.py` and by `switchyard render`. `configmap()` is pure and byte-stable:
the same endpoint always gives the same manifest, so `switchyard render` prints exactly what
the operator creates minus the runtime fields that `with_runtime_fields()` adds (the
controller ownerReference and the render timestamp). Never holds key material: the config
only carries references to Secrets and env vars.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from switchyard_schema import (
    API_VERSION,
    KIND,
    EndpointConfig,
    GatewayEndpoint,
    config_json,
    contract,
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
    manifest: dict[str, Any], endpoint: GatewayEndpoint, rendered_at: str
) -> dict[str, Any]:
    """A copy of `manifest` with the ownerReference and the render timestamp annotation."""
    out = copy.deepcopy(manifest)
    out["metadata"]["ownerReferences"] = [owner_reference(endpoint)]
    out["metadata"]["annotations"][contract.RENDERED_AT_ANNOTATION] = rendered_at
    return out


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The UID named by an object's controller ownerReference, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None
