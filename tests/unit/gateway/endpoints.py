"""Build endpoint configs for gateway unit tests from manifest-shaped dicts."""

from __future__ import annotations

from typing import Any

from switchyard_gateway.config.compiled import CompiledEndpoint, compile_endpoint
from switchyard_schema import EndpointConfig, normalize, parse_endpoint


def target(name: str, weight: int | None = None, model: str | None = None,
           provider: str = "openai", **extra: Any) -> dict[str, Any]:
    """A target manifest entry with an env-var key."""
    out: dict[str, Any] = {"name": name, "provider": provider, "model": model or name,
                           "apiKey": {"envVar": "OPENAI_API_KEY"}, **extra}
    if weight is not None:
        out["weight"] = weight
    return out


def manifest(name: str = "chat", namespace: str | None = "default",
             split: list[dict[str, Any]] | None = None,
             fallbacks: list[dict[str, Any]] | None = None,
             policy: dict[str, Any] | None = None, task: str = "chat") -> dict[str, Any]:
    """A GatewayEndpoint manifest."""
    spec: dict[str, Any] = {"task": task,
                            "trafficSplit": split or [target("primary", 100)]}
    if fallbacks:
        spec["fallbacks"] = fallbacks
    if policy:
        spec["policy"] = policy
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
            "metadata": metadata, "spec": spec}


def config(**kwargs: Any) -> EndpointConfig:
    """A normalised config (see `manifest` for the arguments)."""
    return normalize(parse_endpoint(manifest(**kwargs)))


def compiled(**kwargs: Any) -> CompiledEndpoint:
    """A compiled endpoint (see `manifest` for the arguments)."""
    return compile_endpoint(config(**kwargs))
