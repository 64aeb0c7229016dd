"""The platform's policy on where keys may go: allowed `baseUrl` hosts and env keys bound to hosts.

One definition for both parts (DESIGN.md "Trust and identity"): the operator checks a spec
before rendering (`spec_problems`, a `PolicyViolation`), the gateway checks every config it
loads again (`config_problems`), from the same chart values, so one layer failing is not
enough. Both flags take the same syntax (`parse_hosts`, `parse_env_bindings`):

- `--allowed-base-url-hosts`: `host`, `host:port` or `*.domain` (any subdomain, not the
  domain itself), comma-separated. An entry with a port allows only that port (the scheme's
  default port when a `baseUrl` names none); without one, any port. Empty: any host.
- `--allowed-env-keys`: `NAME=host|host:port|*.domain`, comma-separated: the env var's value
  may be sent only to those hosts. The host a target sends to is its `baseUrl` host, or its
  provider's public API host (`DEFAULT_HOSTS`) when it has no `baseUrl`; a provider without
  one (azure-openai, openai-compatible) needs a `baseUrl` for an env key.

Pure: no I/O, and imports neither part. Raises `PolicySyntaxError` on a malformed flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from switchyard_schema.models import DEFAULT_BASE_URLS, EndpointConfig, Target
from switchyard_schema.problems import Problem

#: The host each provider's SDK sends to without a `baseUrl` (`DEFAULT_BASE_URLS`, which
#: the gateway's adapters use too). Absent: the provider has no public default.
DEFAULT_HOSTS: Mapping[str, str] = {
    str(provider): str(urlsplit(url).hostname) for provider, url in DEFAULT_BASE_URLS.items()
}
_DEFAULT_PORTS = {"https": 443, "http": 80}


class PolicySyntaxError(ValueError):
    """A policy flag or value that cannot be parsed (the message names the entry)."""


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class HostRule:
    """One allow-list entry: a host (or `*.suffix`) and optionally the only port allowed."""

    host: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        """True when `host:port` is allowed by this entry (host compared case-insensitively)."""
        host = host.lower().rstrip(".")
        if self.port is not None and port != self.port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_host(entry: str) -> HostRule:
    """`host`, `host:port`, `[v6]:port` or `*.domain` -> a rule. Raises `PolicySyntaxError`."""
    text = entry.strip().lower()
    try:
        parts = urlsplit("//" + text)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise PolicySyntaxError(f"{entry!r}: not a host or host:port ({exc})") from exc
    if not host or parts.path or parts.query or parts.fragment or parts.username is not None:
        raise PolicySyntaxError(f"{entry!r}: not a host or host:port")
    if "*" in host and not (host.startswith("*.") and "*" not in host[2:] and len(host) > 2):
        raise PolicySyntaxError(f"{entry!r}: a wildcard is allowed only as a leading '*.'")
    return HostRule(host.rstrip("."), port)


def parse_hosts(entries: Iterable[str]) -> tuple[HostRule, ...]:
    """Parse host entries, skipping blanks; sorted and deduplicated."""
    return tuple(sorted({parse_host(e) for e in entries if e.strip()}))


def parse_env_bindings(entries: Iterable[str]) -> dict[str, tuple[HostRule, ...]]:
    """`NAME=host|host` entries -> {NAME: hosts}. Raises `PolicySyntaxError`.

    A bare `NAME` is refused: a key not bound to hosts is exactly what lets a tenant send it
    to a host of its choosing.
    """
    out: dict[str, tuple[HostRule, ...]] = {}
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        name, sep, hosts = entry.partition("=")
        name = name.strip()
        if not sep or not name or not hosts.strip():
            raise PolicySyntaxError(
                f"{entry!r}: bind the env var to the hosts its value may be sent to, as"
                f" {name or 'NAME'}=api.example.com (several hosts: a.example|b.example)"
            )
        out[name] = tuple(sorted({*out.get(name, ()), *parse_hosts(hosts.split("|"))}))
    return out


def split_list(text: str | None) -> list[str]:
    """A comma-separated flag value -> its non-blank entries."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@dataclasses.dataclass(frozen=True)
class PlatformPolicy:
    """The platform's allow-lists, as the admin gave them (chart values or flags)."""

    #: Hosts a `baseUrl` may name. Empty = any host.
    base_url_hosts: tuple[HostRule, ...] = ()
    #: Env var -> hosts its value may be sent to. None = any env var to any host (the
    #: standalone gateway's single-tenant default); empty = no env var at all.
    env_keys: Mapping[str, tuple[HostRule, ...]] | None = dataclasses.field(
        default_factory=dict
    )

    @classmethod
    def parse(cls, hosts: str | None, env_keys: str | None) -> PlatformPolicy:
        """Build from the two flags' values (None env keys = any). Raises `PolicySyntaxError`."""
        return cls(
            base_url_hosts=parse_hosts(split_list(hosts)),
            env_keys=None if env_keys is None else parse_env_bindings(split_list(env_keys)),
        )

    def env_names(self) -> frozenset[str] | None:
        """The env var names a target may name (None = any)."""
        return None if self.env_keys is None else frozenset(self.env_keys)


def host_allowed(host: str, port: int, allowed: Iterable[HostRule]) -> bool:
    """True when some rule allows `host:port`; an empty allow-list allows everything."""
    rules = tuple(allowed)
    return not rules or any(rule.matches(host, port) for rule in rules)


@dataclasses.dataclass(frozen=True, slots=True)
class Destination:
    """Where a target's requests go: host and port, or why that cannot be known."""

    host: str
    port: int
    error: str = ""


def destination(provider: str, base_url: str | None) -> Destination:
    """The host and port a target sends to (its `baseUrl`, else its provider's default)."""
    if base_url is None:
        default = DEFAULT_HOSTS.get(provider)
        if default is None:
            return Destination("", 0, f"provider {provider!r} has no default host")
        return Destination(default, 443)
    try:
        parts = urlsplit(base_url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError as exc:
        return Destination("", 0, f"baseUrl is not a URL ({exc})")
    if not parts.hostname or not port:
        return Destination("", 0, "baseUrl names no http(s) host")
    return Destination(parts.hostname.lower().rstrip("."), port)


def _show(rules: Iterable[HostRule]) -> str:
    return ", ".join(str(r) for r in rules)


def target_problems(
    path: str, provider: str, base_url: str | None, env_var: str | None, policy: PlatformPolicy
) -> list[Problem]:
    """The problems of one target (field paths under `path`); empty when allowed."""
    problems: list[Problem] = []
    where = destination(provider, base_url)
    if base_url is not None:
        if where.error:
            problems.append(Problem(f"{path}.baseUrl", where.error))
        elif not host_allowed(where.host, where.port, policy.base_url_hosts):
            problems.append(Problem(
                f"{path}.baseUrl",
                f"host {where.host!r} (port {where.port}) is not in the platform's allowed"
                f" baseUrl hosts ({_show(policy.base_url_hosts)})",
            ))
    if env_var is None or policy.env_keys is None:
        return problems
    bound = policy.env_keys.get(env_var)
    if bound is None:
        allowed = ", ".join(sorted(policy.env_keys)) or "none are allowed"
        problems.append(Problem(
            f"{path}.apiKey.envVar",
            f"{env_var!r} is not in the platform's allowed env keys ({allowed})",
        ))
    elif where.error or not any(rule.matches(where.host, where.port) for rule in bound):
        sent_to = where.error or f"would be sent to {where.host}:{where.port}"
        problems.append(Problem(
            f"{path}.apiKey.envVar",
            f"{env_var!r} is bound to {_show(bound)}, but this target {sent_to}",
        ))
    return problems


def _spec_targets(spec: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(spec, dict):
        return
    for field in ("trafficSplit", "fallbacks"):
        items = spec.get(field)
        if isinstance(items, list):
            for i, target in enumerate(items):
                if isinstance(target, dict):
                    yield f"spec.{field}[{i}]", target


def spec_problems(spec: Any, policy: PlatformPolicy) -> list[Problem]:
    """Problems of a GatewayEndpoint `spec` as written (tolerates malformed specs)."""
    problems: list[Problem] = []
    for path, target in _spec_targets(spec):
        base_url = target.get("baseUrl")
        api_key = target.get("apiKey")
        env_var = api_key.get("envVar") if isinstance(api_key, dict) else None
        problems += target_problems(
            path,
            str(target.get("provider", "")),
            base_url if isinstance(base_url, str) else None,
            env_var if isinstance(env_var, str) else None,
            policy,
        )
    return problems


def config_problems(config: EndpointConfig, policy: PlatformPolicy) -> list[Problem]:
    """Problems of a rendered config (`endpoint.json` paths), as the gateway checks it."""
    problems: list[Problem] = []
    targets: list[tuple[str, Target]] = [
        *((f"trafficSplit[{i}]", t) for i, t in enumerate(config.traffic_split)),
        *((f"fallbacks[{i}]", t) for i, t in enumerate(config.fallbacks)),
    ]
    for path, target in targets:
        env_var = target.api_key.env_var if target.api_key is not None else None
        problems += target_problems(
            path, target.provider.value, target.base_url, env_var, policy
        )
    return problems


def describe(problems: Iterable[Problem]) -> str:
    """One message naming every problem with its field path."""
    return "; ".join(str(p) for p in problems)
