"""Azure OpenAI adapter: deployment URL, api-version, `api-key` header."""

from __future__ import annotations

import orjson
import pytest

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.providers.azure_openai import AzureOpenAIAdapter
from switchyard_schema import Provider, Task

from .helpers import KEY, target

ADAPTER = AzureOpenAIAdapter()


def test_deployment_url_and_key_header() -> None:
    t = target(
        Provider.AZURE_OPENAI,
        "gpt-4o",
        "https://r.openai.azure.com",
        deployment="prod 1",
        api_version="2024-10-21",
    )
    request = ADAPTER.build_request(
        t, Task.CHAT, {"model": "chat", "messages": []}, ApiKey(KEY), False
    )
    assert request.url == (
        "https://r.openai.azure.com/openai/deployments/prod%201/chat/completions?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == KEY and "Authorization" not in request.headers
    assert orjson.loads(request.body)["model"] == "gpt-4o"


def test_deployment_defaults_to_model_and_embeddings_path() -> None:
    t = target(Provider.AZURE_OPENAI, "emb", "https://r")
    request = ADAPTER.build_request(t, Task.EMBEDDINGS, {"input": "x"}, ApiKey(KEY), False)
    assert request.url.startswith("https://r/openai/deployments/emb/embeddings?api-version=")


def test_base_url_is_required() -> None:
    with pytest.raises(ValueError, match="baseUrl"):
        ADAPTER.build_request(target(Provider.AZURE_OPENAI), Task.CHAT, {}, None, False)
