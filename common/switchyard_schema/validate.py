"""Validate GatewayEndpoint manifests with the API server's verdicts, offline.

Callers: `switchyard validate`, the operator (before rendering) and the gateway's
standalone loader. The schema comes from the CRD (`crd.py`), the CEL rules from their
Python twins (`rules.py`); this module adds what the API server checks outside the schema
(apiVersion, kind, metadata.name).
"""

from __future__ import annotations

import re
from typing import Any

from switchyard_schema import crd, rules, structural
from switchyard_schema.problems import Problem

# What the API server requires of any object's name and namespace (DNS-1123).
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_ours(obj: Any) -> bool:
    """True for any object of the switchyard.dev group (valid or not)."""
    return isinstance(obj, dict) and str(obj.get("apiVersion", "")).startswith(crd.GROUP + "/")


def validate_manifest(obj: Any) -> list[Problem]:
    """Return every problem of a GatewayEndpoint manifest (empty when valid)."""
    if not isinstance(obj, dict):
        return [Problem("", "a manifest must be a mapping")]
    problems = _check_identity(obj)
    if problems:
        return problems
    problems.extend(_check_metadata(obj.get("metadata")))
    walker = structural.Walker(rules.check)
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    walker.walk(crd.openapi_schema(), body, "")
    problems.extend(walker.problems)
    return problems


def _check_identity(obj: dict[str, Any]) -> list[Problem]:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version != crd.API_VERSION:
        return [Problem("apiVersion", f"must be {crd.API_VERSION}, got {api_version!r}")]
    if kind != crd.KIND:
        return [Problem("kind", f"must be {crd.KIND} for {crd.API_VERSION}, got {kind!r}")]
    return []


def _check_metadata(metadata: Any) -> list[Problem]:
    if not isinstance(metadata, dict):
        return [Problem("metadata", "required field is missing")]
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return [Problem("metadata.name", "required field is missing")]
    problems = []
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        problems.append(
            Problem("metadata.name", "must be a lowercase DNS-1123 subdomain (a-z, 0-9, '-', '.')")
        )
    namespace = metadata.get("namespace")
    if namespace is not None and (
        not isinstance(namespace, str) or len(namespace) > 63 or not _LABEL.match(namespace)
    ):
        problems.append(Problem("metadata.namespace", "must be a lowercase DNS-1123 label"))
    return problems
