"""The one interface every provider adapter implements.

An adapter translates between the caller's OpenAI-format request/response and one
provider's wire format, and maps that provider's errors onto `errors.UpstreamError`
subclasses. Adapters do no I/O: the router's attempt runner (`routing/attempts.py`) owns
the transport client, timeouts and cancellation, and calls these pure functions around it,
so each adapter is tested from recorded payloads without sockets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import UpstreamError
from switchyard_gateway.providers.sse import SSE_LIMITS, SseLimits
from switchyard_schema import Provider, Task


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What to send upstream: method, full URL, headers (auth included) and body bytes."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def __repr__(self) -> str:  # headers hold the key: never print them
        return f"UpstreamRequest({self.method} {self.url}, {len(self.body)} bytes)"


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """Token counts, when the provider reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_openai(self) -> dict[str, int]:
        """As OpenAI's usage object (what translated responses carry)."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedResponse:
    """A complete (non-streaming) response, already in OpenAI format."""

    body: bytes  # OpenAI-format JSON, ready to send to the caller
    usage: Usage | None


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event for the caller: a complete SSE frame (`data: ...\\n\\n`) in OpenAI format."""

    frame: bytes
    #: True when the frame carries content (a delta with text or a tool call). Until the
    #: first content frame has been sent, the router may still fall back.
    is_content: bool = False


class StreamTranslator(Protocol):
    """Incremental decoder of one upstream stream into OpenAI chunks.

    `feed` takes raw bytes as they arrive (any split, even mid-line) and returns the frames
    ready so far; it raises an `UpstreamError` when the provider signals an error in-band
    (Anthropic's `event: error`). `finish` is called at the upstream's end of stream: it
    returns the last frames (OpenAI's `data: [DONE]` included) or raises `UpstreamError`
    if the stream ended before its terminating event (a cut stream is never a success).
    `usage`, `model` and `finish_reasons` are what the stream said so far (for the
    metrics and the attempt span), never its content.
    """

    usage: Usage | None

    @property
    def model(self) -> str | None:
        """The model the provider named in the stream (None: it named none yet)."""
        ...

    @property
    def finish_reasons(self) -> list[str]:
        """The OpenAI `finish_reason` of each choice that finished, by choice index."""
        ...

    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


class Adapter(Protocol):
    """A provider's translator. Stateless; one instance per provider, shared."""

    provider: ClassVar[Provider]
    #: The tasks the provider's API offers (mirrors the CRD's task/provider rules).
    tasks: ClassVar[frozenset[Task]]

    def build_request(
        self,
        target: CompiledTarget,
        task: Task,
        body: dict[str, Any],
        api_key: ApiKey | None,
        stream: bool,
    ) -> UpstreamRequest:
        """Translate the caller's OpenAI-format body for `target` (model replaced)."""
        ...

    def parse_response(self, target: CompiledTarget, task: Task, raw: bytes) -> ParsedResponse:
        """Translate a 2xx body to OpenAI format.

        Raises `UpstreamServerError` when the body cannot be parsed (a 200 with a broken
        body is a server error, never a success).
        """
        ...

    def map_error(
        self, target: CompiledTarget, status: int, headers: Mapping[str, str], raw: bytes
    ) -> UpstreamError:
        """Map a non-2xx response to the error type the router decides on.

        Works from the status, the structured error body and Retry-After, never from
        message text; 429 -> RateLimited, 5xx/529 -> UpstreamServerError,
        401/403/404 -> ProviderAuthError, 400/413/422 -> CallerFault.
        """
        ...

    def stream_translator(self, target: CompiledTarget, task: Task,
                          limits: SseLimits = SSE_LIMITS) -> StreamTranslator:
        """A fresh translator for one streamed response; its `feed` raises
        `SseLimitExceeded` past `limits`."""
        ...
