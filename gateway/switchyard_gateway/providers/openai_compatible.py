"""Adapter for any server that speaks OpenAI's wire format (vLLM, llama.cpp, Ollama, TGI...).

Same format as OpenAI; differences: `baseUrl` is required (the schema enforces it, and
`url` raises ValueError without one), the key is optional (no `Authorization` header when
none is configured), and flat error bodies (`{"object": "error", "message": ...}`, as vLLM
sends) are understood by the shared `openai.error_fields`.
"""

from __future__ import annotations

from typing import ClassVar

from switchyard_gateway.providers.openai import OpenAIAdapter
from switchyard_schema import Provider


class OpenAICompatibleAdapter(OpenAIAdapter):
    """An OpenAI-compatible server at a configured base URL."""

    provider: ClassVar[Provider] = Provider.OPENAI_COMPATIBLE
