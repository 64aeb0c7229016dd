"""OpenAI adapter: the caller's own wire format, so the body passes through.

Used through `registry.adapter_for`; Azure OpenAI, Mistral and OpenAI-compatible servers
speak the same format and subclass `OpenAIAdapter`, overriding only URL, auth headers and
body tweaks. Requests: the caller's body with `model` replaced (and `stream` /
`stream_options` kept only for streaming chat/completions). Responses: the upstream bytes,
checked for shape but not re-serialised. Streams: each upstream event is re-framed as it
arrived (its JSON is parsed to see whether it carries content, never re-encoded).

Stream usage is reported when the caller asked for it (`stream_options.include_usage`,
kept as sent) or when the upstream sends it anyway (Mistral). The gateway does not inject
`include_usage` itself: that would add a chunk with empty `choices` the caller never
asked for, and naive clients index `choices[0]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.errors import RateLimited, UpstreamError, UpstreamServerError
from switchyard_gateway.providers import sse, upstream_errors
from switchyard_gateway.providers.base import (
    ParsedResponse,
    StreamEvent,
    UpstreamRequest,
    Usage,
)
from switchyard_schema import DEFAULT_BASE_URLS, Provider, Task

PATHS: dict[Task, str] = {
    Task.CHAT: "/chat/completions",
    Task.COMPLETIONS: "/completions",
    Task.EMBEDDINGS: "/embeddings",
}

#: OpenAI error types that mean "rate limited" when they arrive in-band in a stream.
_RATE_LIMIT_TYPES = frozenset({"rate_limit_error", "rate_limit_exceeded", "requests", "tokens"})


def usage_of(value: object) -> Usage | None:
    """OpenAI's `usage` object (chat, completions or embeddings) as `Usage`."""
    if not isinstance(value, dict):
        return None
    prompt = value.get("prompt_tokens")
    completion = value.get("completion_tokens")
    return Usage(
        prompt_tokens=prompt if isinstance(prompt, int) else 0,
        completion_tokens=completion if isinstance(completion, int) else 0,
    )


def error_fields(data: object) -> tuple[str, str | None, str]:
    """(type, code, message) from an OpenAI-style error body.

    Accepts OpenAI's `{"error": {...}}` and the flat `{"object": "error", "message": ...}`
    that vLLM and Mistral send.
    """
    if not isinstance(data, dict):
        return "", None, ""
    error = data.get("error")
    fields = error if isinstance(error, dict) else data
    code = fields.get("code")
    return (
        upstream_errors.text(fields.get("type")),
        code if isinstance(code, str) else None,
        upstream_errors.text(fields.get("message") or fields.get("detail")),
    )


def error_param(data: object) -> str | None:
    """The `param` of an OpenAI-style error body (the request field at fault), if any."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    param = (error if isinstance(error, dict) else data).get("param")
    return param if isinstance(param, str) else None


def has_content(chunk: dict[str, Any]) -> bool:
    """True when a chat/completions chunk carries text, a refusal or a tool call."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        if choice.get("text"):
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and (
            delta.get("content")
            or delta.get("tool_calls")
            or delta.get("function_call")
            or delta.get("refusal")
        ):
            return True
    return False


class OpenAIStreamTranslator:
    """Passes an OpenAI-format SSE stream through, frame by frame, checking it on the way."""

    __slots__ = ("_decoder", "_done", "_finished", "_model", "_started", "_target", "usage")

    def __init__(self, target: CompiledTarget, limits: sse.SseLimits = sse.SSE_LIMITS) -> None:
        self._target = target
        self._decoder = sse.SseDecoder(limits)
        self._done = False
        #: Choice indexes seen, and the `finish_reason` of those that carried one.
        self._started: set[int] = set()
        self._finished: dict[int, str] = {}
        self._model: str | None = None
        self.usage: Usage | None = None

    @property
    def model(self) -> str | None:
        """The `model` of the first chunk without content that named one."""
        return self._model

    @property
    def finish_reasons(self) -> list[str]:
        """The finish reasons seen, by choice index."""
        return [self._finished[i] for i in sorted(self._finished)]

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Frames completed by `chunk`; raises on an in-band error or a malformed event."""
        return self._translate(self._decoder.feed(chunk))

    def finish(self) -> list[StreamEvent]:
        """The last frames; raises `UpstreamServerError` if `[DONE]` never came, unless
        every choice carried its `finish_reason`: a stream that said it was finished and
        then ended cleanly is complete (some servers never send `[DONE]`), and the caller
        gets the `[DONE]` it waits for."""
        events = self._translate(self._decoder.finish())
        if not self._done and self._finished and self._finished.keys() >= self._started:
            self._done = True
            events.append(StreamEvent(sse.DONE_FRAME))
        if not self._done:
            raise UpstreamServerError(
                "upstream stream ended before [DONE]", target=self._target.name, upstream_status=200
            )
        return events

    def _translate(self, events: list[sse.SseEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if self._done:
                break  # nothing after [DONE] reaches the caller
            data = event.data
            if data == sse.DONE_DATA:
                self._done = True
                out.append(StreamEvent(sse.DONE_FRAME))
                continue
            chunk = upstream_errors.stream_json(self._target, data)
            if "error" in chunk and "choices" not in chunk:
                raise self._in_band_error(chunk)
            if chunk.get("usage"):
                self.usage = usage_of(chunk["usage"])
            content = has_content(chunk)
            if not content:  # finish chunks carry no content; content chunks pay nothing
                self._note_finish(chunk)
            out.append(StreamEvent(sse.encode(data), content))
        return out

    def _note_finish(self, chunk: dict[str, Any]) -> None:
        """Remember which choices started (role chunk) and which finished, and the model
        the first such chunk named, from a chunk without content (content chunks pay
        nothing). A server that sends its finish_reason only together with content
        is not recognised, and its stream without `[DONE]` stays broken (the safe side)."""
        if self._model is None:
            model = chunk.get("model")
            self._model = model if isinstance(model, str) else None
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                index = index if isinstance(index, int) else 0
                self._started.add(index)
                reason = choice.get("finish_reason")
                if reason:
                    self._finished[index] = str(reason)

    def _in_band_error(self, chunk: dict[str, Any]) -> UpstreamError:
        error_type, code, _ = error_fields(chunk)
        label = error_type or code or "no error type"
        cls = RateLimited if {error_type, code} & _RATE_LIMIT_TYPES else UpstreamServerError
        return cls(
            f"upstream stream sent an error ({label})",
            target=self._target.name,
            upstream_status=200,
        )


class OpenAIAdapter:
    """OpenAI's API: chat, completions, embeddings. Bearer auth."""

    provider: ClassVar[Provider] = Provider.OPENAI
    tasks: ClassVar[frozenset[Task]] = frozenset(Task)
    #: Request fields the upstream rejects although OpenAI accepts them (see Mistral).
    unsupported_fields: ClassVar[frozenset[str]] = frozenset()

    def build_request(
        self,
        target: CompiledTarget,
        task: Task,
        body: dict[str, Any],
        api_key: ApiKey | None,
        stream: bool,
    ) -> UpstreamRequest:
        """The caller's body with `model` replaced, posted to the task's path."""
        payload = self.translate_body(target, task, body, stream)
        return UpstreamRequest(
            method="POST",
            url=self.url(target, task),
            headers=self.headers(api_key),
            body=orjson.dumps(payload),
        )

    def url(self, target: CompiledTarget, task: Task) -> str:
        """`{baseUrl}/chat/completions` and so on; raises ValueError without a base URL."""
        # Rendered configs carry the default already; an older payload may not.
        base = target.base_url or DEFAULT_BASE_URLS.get(self.provider)
        if base is None:
            raise ValueError(f"target {target.name!r} ({self.provider.value}) needs a baseUrl")
        return base + PATHS[task]

    def headers(self, api_key: ApiKey | None) -> dict[str, str]:
        """JSON content type plus `Authorization: Bearer` when a key is configured."""
        headers = {"Content-Type": "application/json"}
        if api_key is not None:
            headers["Authorization"] = "Bearer " + api_key.reveal()
        return headers

    def translate_body(
        self, target: CompiledTarget, task: Task, body: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        """A shallow copy of the caller's body, fitted to this upstream."""
        unsupported = self.unsupported_fields
        payload = ({k: v for k, v in body.items() if k not in unsupported} if unsupported
                   else body.copy())
        payload["model"] = target.model
        if stream and task is not Task.EMBEDDINGS:
            payload["stream"] = True
        else:
            # OpenAI rejects stream_options unless stream is true.
            payload.pop("stream", None)
            payload.pop("stream_options", None)
        return payload

    def parse_response(self, target: CompiledTarget, task: Task, raw: bytes) -> ParsedResponse:
        """The upstream body as is, once it is known to be a well-formed response."""
        data = upstream_errors.load_json(raw)
        key = "data" if task is Task.EMBEDDINGS else "choices"
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise upstream_errors.unparseable(target, f"a 2xx body without a {key!r} list")
        return ParsedResponse(body=raw, usage=usage_of(data.get("usage")))

    def map_error(
        self, target: CompiledTarget, status: int, headers: Mapping[str, str], raw: bytes
    ) -> UpstreamError:
        """Status table of `upstream_errors`, with OpenAI's type/code/message."""
        data = upstream_errors.load_json(raw)
        error_type, code, message = error_fields(data)
        return upstream_errors.upstream_error(
            target, status, headers, error_type=error_type, code=code, message=message,
            param=error_param(data),
        )

    def stream_translator(self, target: CompiledTarget, task: Task,
                          limits: sse.SseLimits = sse.SSE_LIMITS) -> OpenAIStreamTranslator:
        """A passthrough translator for one stream."""
        return OpenAIStreamTranslator(target, limits)
