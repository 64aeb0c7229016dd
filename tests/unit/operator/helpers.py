"""Shared builders for the operator's unit tests."""

from __future__ import annotations

import copy
from typing import Any

from switchyard_schema import GatewayEndpoint, normalize, parse_endpoint

AB_SPLIT: dict[str, Any] = {
    "apiVersion": "switchyard.dev/v1alpha1",
    "kind": "GatewayEndpoint",
    "metadata": {"name": "chat", "namespace": "team-a", "generation": 3, "uid": "uid-1"},
    "spec": {
        "task": "chat",
        "trafficSplit": [
            {
                "name": "gpt5",
                "provider": "openai",
                "model": "gpt-5",
                "weight": 50,
                "apiKey": {"secretKeyRef": {"name": "openai-key", "key": "api-key"}},
            },
            {
                "name": "claude",
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "weight": 50,
                "apiKey": {"secretKeyRef": {"name": "anthropic-key", "key": "api-key"}},
            },
        ],
        "fallbacks": [
            {
                "provider": "openai-compatible",
                "model": "llama",
                "baseUrl": "http://vllm.models.svc.cluster.local:8000/v1",
            },
            {"provider": "openai", "model": "gpt-5-mini", "apiKey": {"envVar": "OPENAI_KEY"}},
        ],
    },
}


def manifest(**spec_changes: Any) -> dict[str, Any]:
    """A deep copy of AB_SPLIT with top-level spec fields replaced."""
    out = copy.deepcopy(AB_SPLIT)
    out["spec"].update(spec_changes)
    return out


def endpoint_and_config(obj: dict[str, Any] | None = None) -> tuple[GatewayEndpoint, Any]:
    """Parse and normalise a manifest (AB_SPLIT by default)."""
    endpoint = parse_endpoint(obj or copy.deepcopy(AB_SPLIT))
    return endpoint, normalize(endpoint)
