"""Mistral adapter: OpenAI's wire format at https://api.mistral.ai/v1 (chat, embeddings).

Mistral validates requests strictly and differs from OpenAI in a few request fields; only
the differences known to break a request are handled (anything else passes through, so a
new Mistral field still reaches it):
- `stream_options` is rejected -> dropped (Mistral streams report `usage` in their last
  chunk anyway, so the gateway still counts tokens);
- `seed` is called `random_seed`;
- `max_completion_tokens` (OpenAI's newer name) is called `max_tokens`.
Responses, streams and errors (`{"object": "error", "message", "type", "code"}`) are
OpenAI-shaped and handled by the inherited code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.providers.openai import OpenAIAdapter
from switchyard_schema import Provider, Task

_RENAMED = {"seed": "random_seed", "max_completion_tokens": "max_tokens"}


class MistralAdapter(OpenAIAdapter):
    """Mistral's La Plateforme API."""

    provider: ClassVar[Provider] = Provider.MISTRAL
    tasks: ClassVar[frozenset[Task]] = frozenset({Task.CHAT, Task.EMBEDDINGS})
    unsupported_fields: ClassVar[frozenset[str]] = frozenset({"stream_options"})

    def translate_body(
        self, target: CompiledTarget, task: Task, body: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        """OpenAI's body with Mistral's names for the renamed fields."""
        payload = super().translate_body(target, task, body, stream)
        for openai_name, mistral_name in _RENAMED.items():
            if openai_name in payload:
                value = payload.pop(openai_name)
                payload.setdefault(mistral_name, value)
        return payload
