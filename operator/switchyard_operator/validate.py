"""The operator's validation: the CRD's rules again, plus the platform policy CEL cannot know.

Called by `reconcile.py` before rendering and before any Secret is looked up (a name that
fails the CRD's pattern, such as `../../team-b/secrets/b-key`, never reaches an API path).
The CRD rules come from `switchyard_schema.validate_manifest` (defence in depth: the API
server normally enforced them at admission already, but an older CRD may be installed). On
top, the platform's policy (`switchyard_schema.policy`, shared with the gateway, which checks
it again): allowed `baseUrl` hosts and env keys bound to the hosts their value may go to.
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from switchyard_schema import Problem, validate_manifest
from switchyard_schema.policy import PlatformPolicy, spec_problems


def check(manifest: Any, policy: PlatformPolicy) -> tuple[list[Problem], list[Problem]]:
    """Validate a GatewayEndpoint: (schema problems, policy problems); both empty = accepted."""
    schema = validate_manifest(manifest)
    spec = manifest.get("spec") if isinstance(manifest, dict) else None
    return schema, spec_problems(spec, policy)


def describe(problems: list[Problem]) -> str:
    """One message naming every problem with its field path."""
    return "; ".join(str(p) for p in problems)
