"""The GatewayEndpoint CRD as data: group, version, kind, and its OpenAPI schema.

The CRD in `crds/` is the one source of truth; this package ships an identical copy
(`crd.yaml`, checked by a unit test) so that the installed wheel can validate offline.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

import yaml

GROUP = "switchyard.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "GatewayEndpoint"
PLURAL = "gatewayendpoints"


@functools.cache
def definition() -> dict[str, Any]:
    """Return the CustomResourceDefinition manifest (parsed once, never mutate it)."""
    text = importlib.resources.files(__package__).joinpath("crd.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def openapi_schema() -> dict[str, Any]:
    """Return the `openAPIV3Schema` of the served version."""
    (version,) = [v for v in definition()["spec"]["versions"] if v["name"] == VERSION]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema
