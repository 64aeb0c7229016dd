"""Shared helpers for the adapter tests: targets, and feeding streams in awkward pieces."""

from __future__ import annotations

from collections.abc import Iterable

from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.providers.base import StreamEvent, StreamTranslator
from switchyard_schema import Provider

KEY = "sk-test-SECRET-0123456789"


def target(
    provider: Provider,
    model: str = "model-x",
    base_url: str | None = None,
    *,
    deployment: str | None = None,
    api_version: str | None = None,
) -> CompiledTarget:
    """A compiled target with only the fields adapters read."""
    return CompiledTarget(
        name=f"{provider.value}-{model}",
        provider=provider,
        model=model,
        base_url=base_url,
        api_key_ref=None,
        azure_deployment=deployment,
        azure_api_version=api_version,
        max_concurrent=None,
        weight=0,
        identity=(provider.value, model, base_url or "", ""),
    )


def pieces(raw: bytes, size: int) -> list[bytes]:
    """`raw` cut into pieces of `size` bytes (mid-line, mid-CRLF, mid-UTF-8)."""
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def run(translator: StreamTranslator, chunks: Iterable[bytes]) -> list[StreamEvent]:
    """Feed every chunk, then finish; all events in order."""
    events: list[StreamEvent] = []
    for chunk in chunks:
        events.extend(translator.feed(chunk))
    events.extend(translator.finish())
    return events
