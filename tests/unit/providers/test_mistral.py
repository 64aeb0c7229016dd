"""Mistral adapter: OpenAI format with Mistral's field names."""

from __future__ import annotations

import orjson

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.providers.mistral import MistralAdapter
from switchyard_schema import Provider, Task

from .helpers import KEY, target

ADAPTER = MistralAdapter()


def test_renames_and_drops_fields_mistral_rejects() -> None:
    body = {
        "model": "chat",
        "messages": [],
        "seed": 4,
        "max_completion_tokens": 10,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
    }
    request = ADAPTER.build_request(
        target(Provider.MISTRAL, "mistral-small"), Task.CHAT, body, ApiKey(KEY), True
    )
    assert request.url == "https://api.mistral.ai/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert orjson.loads(request.body) == {
        "model": "mistral-small",
        "messages": [],
        "random_seed": 4,
        "max_tokens": 10,
        "temperature": 0.2,
        "stream": True,
    }


def test_explicit_mistral_name_wins() -> None:
    body = {"max_tokens": 5, "max_completion_tokens": 10, "messages": []}
    request = ADAPTER.build_request(target(Provider.MISTRAL), Task.CHAT, body, None, False)
    assert orjson.loads(request.body)["max_tokens"] == 5


def test_tasks() -> None:
    assert ADAPTER.tasks == {Task.CHAT, Task.EMBEDDINGS}
