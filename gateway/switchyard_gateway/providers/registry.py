"""Provider -> adapter, the one place that knows every adapter.

The router asks `adapter_for(target.provider)` (the config compiler may resolve it once
per target). Adding a provider means a new module and one entry here, never a branch
elsewhere. Adapters are stateless, so one shared instance per provider suffices.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from switchyard_gateway.providers.anthropic import AnthropicAdapter
from switchyard_gateway.providers.azure_openai import AzureOpenAIAdapter
from switchyard_gateway.providers.base import Adapter
from switchyard_gateway.providers.gemini import GeminiAdapter
from switchyard_gateway.providers.mistral import MistralAdapter
from switchyard_gateway.providers.openai import OpenAIAdapter
from switchyard_gateway.providers.openai_compatible import OpenAICompatibleAdapter
from switchyard_schema import Provider

ADAPTERS: Mapping[Provider, Adapter] = MappingProxyType(
    {
        Provider.OPENAI: OpenAIAdapter(),
        Provider.AZURE_OPENAI: AzureOpenAIAdapter(),
        Provider.ANTHROPIC: AnthropicAdapter(),
        Provider.GEMINI: GeminiAdapter(),
        Provider.MISTRAL: MistralAdapter(),
        Provider.OPENAI_COMPATIBLE: OpenAICompatibleAdapter(),
    }
)


def adapter_for(provider: Provider) -> Adapter:
    """The adapter for `provider`; KeyError for a provider without one (a bug)."""
    return ADAPTERS[provider]
