"""OpenAI-compatible adapter and the registry."""

from __future__ import annotations

import pytest

from switchyard_gateway.providers.openai_compatible import OpenAICompatibleAdapter
from switchyard_gateway.providers.registry import ADAPTERS, adapter_for
from switchyard_schema import Provider, Task

from .helpers import target

ADAPTER = OpenAICompatibleAdapter()


def test_base_url_required_key_optional() -> None:
    t = target(Provider.OPENAI_COMPATIBLE, "llama", "http://vllm:8000/v1")
    request = ADAPTER.build_request(t, Task.COMPLETIONS, {"prompt": "x"}, None, False)
    assert request.url == "http://vllm:8000/v1/completions"
    assert "Authorization" not in request.headers
    with pytest.raises(ValueError, match="baseUrl"):
        ADAPTER.build_request(target(Provider.OPENAI_COMPATIBLE), Task.CHAT, {}, None, False)


def test_registry_has_one_adapter_per_provider() -> None:
    assert set(ADAPTERS) == set(Provider)
    for provider in Provider:
        assert adapter_for(provider).provider is provider
