"""The operator's validation: the CRD's rules again, plus the platform policy CEL cannot know.

Called by `reconcile.py` before rendering. The CRD rules come from
`switchyard_schema.validate_manifest` (defence in depth: the API server normally enforced
them at admission already). On top, the platform's allow-lists given to the operator by
flag or Helm value: `baseUrl` hosts (empty list = any host) and `apiKey.envVar` names
(empty list = none allowed, so a tenant cannot borrow a key from the gateway's environment).
Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from switchyard_schema import Problem, validate_manifest


@dataclasses.dataclass(frozen=True)
class Policy:
    """The platform's allow-lists."""

    #: Hosts a `baseUrl` may name; `*.example.com` allows any subdomain. Empty = any host.
    base_url_hosts: frozenset[str] = frozenset()
    #: Env var names `apiKey.envVar` may name. Empty = none.
    env_keys: frozenset[str] = frozenset()

    @classmethod
    def from_lists(cls, hosts: list[str], env_keys: list[str]) -> Policy:
        """Build from lists as given on the command line (case-insensitive hosts)."""
        return cls(
            base_url_hosts=frozenset(h.strip().lower() for h in hosts if h.strip()),
            env_keys=frozenset(k.strip() for k in env_keys if k.strip()),
        )


def _targets(spec: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(spec, dict):
        return
    for field in ("trafficSplit", "fallbacks"):
        items = spec.get(field)
        if isinstance(items, list):
            for i, target in enumerate(items):
                if isinstance(target, dict):
                    yield f"spec.{field}[{i}]", target


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """True when `host` is in `allowed` (exact, or under a `*.` suffix); empty allows all."""
    if not allowed:
        return True
    host = host.lower().rstrip(".")
    if host in allowed:
        return True
    return any(a.startswith("*.") and host.endswith(a[1:]) for a in allowed)


def policy_problems(spec: Any, policy: Policy) -> list[Problem]:
    """Problems of a spec against the platform's allow-lists (empty when allowed)."""
    problems: list[Problem] = []
    for path, target in _targets(spec):
        base_url = target.get("baseUrl")
        if isinstance(base_url, str):
            host = urlsplit(base_url).hostname or ""
            if not host_allowed(host, policy.base_url_hosts):
                allowed = ", ".join(sorted(policy.base_url_hosts))
                problems.append(
                    Problem(
                        f"{path}.baseUrl",
                        f"host {host!r} is not in the operator's allowed baseUrl hosts ({allowed})",
                    )
                )
        api_key = target.get("apiKey")
        env_var = api_key.get("envVar") if isinstance(api_key, dict) else None
        if isinstance(env_var, str) and env_var not in policy.env_keys:
            allowed = ", ".join(sorted(policy.env_keys)) or "none are allowed"
            problems.append(
                Problem(
                    f"{path}.apiKey.envVar",
                    f"{env_var!r} is not in the operator's allowed env keys ({allowed})",
                )
            )
    return problems


def check(manifest: Any, policy: Policy) -> tuple[list[Problem], list[Problem]]:
    """Validate a GatewayEndpoint: (schema problems, policy problems); both empty = accepted."""
    schema = validate_manifest(manifest)
    spec = manifest.get("spec") if isinstance(manifest, dict) else None
    return schema, policy_problems(spec, policy)


def describe(problems: list[Problem]) -> str:
    """One message naming every problem with its field path."""
    return "; ".join(str(p) for p in problems)
