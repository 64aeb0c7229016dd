"""Azure OpenAI adapter: OpenAI's wire format behind Azure's deployment URLs.

URL `{baseUrl}/openai/deployments/{deployment}/{path}?api-version={version}` (the
deployment defaults to the target's model name), key in the `api-key` header. Bodies,
responses, streams and errors are OpenAI's, so everything else is inherited. Azure's
extra stream chunks (`prompt_filter_results` with empty `choices`) pass through and do
not count as content.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.providers.openai import PATHS, OpenAIAdapter
from switchyard_schema import Provider, Task

#: Used when a target names no api-version (the schema fills one in; this is the floor).
DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIAdapter(OpenAIAdapter):
    """Azure OpenAI Service: chat, completions, embeddings by deployment."""

    provider: ClassVar[Provider] = Provider.AZURE_OPENAI

    def url(self, target: CompiledTarget, task: Task) -> str:
        """The deployment URL with `api-version`; raises ValueError without a base URL."""
        if target.base_url is None:
            raise ValueError(f"target {target.name!r} (azure-openai) needs a baseUrl")
        deployment = quote(target.azure_deployment or target.model, safe="")
        version = quote(target.azure_api_version or DEFAULT_API_VERSION, safe="")
        return (
            f"{target.base_url}/openai/deployments/{deployment}{PATHS[task]}?api-version={version}"
        )

    def headers(self, api_key: ApiKey | None) -> dict[str, str]:
        """JSON content type plus Azure's `api-key` header."""
        headers = {"Content-Type": "application/json"}
        if api_key is not None:
            headers["api-key"] = api_key.reveal()
        return headers
