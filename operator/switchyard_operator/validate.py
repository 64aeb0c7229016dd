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

import dataclasses
from typing import Any

from switchyard_schema import GatewayEndpoint, InvalidEndpoint, Problem, parse_endpoint
from switchyard_schema.policy import PlatformPolicy, spec_problems


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one validation: the typed endpoint when the schema accepts it."""

    endpoint: GatewayEndpoint | None
    schema: list[Problem]
    policy: list[Problem]

    @property
    def problems(self) -> list[Problem]:
        """Schema problems first (a spec that fails the schema is not judged by policy)."""
        return self.schema or self.policy


def check(manifest: Any, policy: PlatformPolicy) -> Verdict:
    """Validate a GatewayEndpoint once: the CRD walk and the typed parse (`parse_endpoint`
    does both), then the platform policy. No problem in either list means accepted."""
    try:
        endpoint: GatewayEndpoint | None = parse_endpoint(manifest)
        schema: list[Problem] = []
    except InvalidEndpoint as exc:
        endpoint, schema = None, exc.problems
    spec = manifest.get("spec") if isinstance(manifest, dict) else None
    return Verdict(endpoint, schema, spec_problems(spec, policy))


def describe(problems: list[Problem]) -> str:
    """One message naming every problem with its field path."""
    return "; ".join(str(p) for p in problems)
