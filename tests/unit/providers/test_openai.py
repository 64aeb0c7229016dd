"""OpenAI adapter: body passthrough, stream passthrough, error mapping and Retry-After."""

from __future__ import annotations

import email.utils

import orjson
import pytest

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.errors import (
    CallerFault,
    ProviderAuthError,
    RateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from switchyard_gateway.providers import upstream_errors
from switchyard_gateway.providers.openai import OpenAIAdapter
from switchyard_schema import Provider, Task

from .helpers import KEY, pieces, run, target

ADAPTER = OpenAIAdapter()
TARGET = target(Provider.OPENAI, "gpt-5")

STREAM = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5",'
    b'"choices":[{"index":0,"delta":{"content":"H\xc3\xa9llo"},"finish_reason":null}]}\r\n\r\n'
    b": keep-alive\n\n"
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n'
    b"data: [DONE]\n\n"
)


def test_request_replaces_model_and_keeps_everything_else() -> None:
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    request = ADAPTER.build_request(TARGET, Task.CHAT, body, ApiKey(KEY), stream=True)
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert orjson.loads(request.body) == {**body, "model": "gpt-5"}
    assert KEY not in repr(request)


def test_non_streaming_request_drops_stream_options() -> None:
    body = {"model": "chat", "input": "x", "stream_options": {"include_usage": True}}
    request = ADAPTER.build_request(
        target(Provider.OPENAI, "e", "http://h/v1"), Task.EMBEDDINGS, body, None, False
    )
    assert request.url == "http://h/v1/embeddings"
    assert "Authorization" not in request.headers
    assert orjson.loads(request.body) == {"model": "e", "input": "x"}


def test_parse_response_passes_bytes_through_and_reads_usage() -> None:
    raw = b'{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}'
    parsed = ADAPTER.parse_response(TARGET, Task.CHAT, raw)
    assert parsed.body is raw
    assert (parsed.usage.prompt_tokens, parsed.usage.completion_tokens) == (3, 4)  # type: ignore[union-attr]


@pytest.mark.parametrize("raw", [b"", b"{broken", b"[]", b'{"object": "list"}'])
def test_broken_2xx_body_is_a_server_error(raw: bytes) -> None:
    with pytest.raises(UpstreamServerError):
        ADAPTER.parse_response(TARGET, Task.CHAT, raw)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_stream_is_reframed_unchanged_at_any_split(size: int) -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    events = run(translator, pieces(STREAM, size))
    assert [e.is_content for e in events] == [False, True, False, False, False]
    frames = b"".join(e.frame for e in events)
    assert frames == STREAM.replace(b"\r\n", b"\n").replace(b": keep-alive\n\n", b"")
    assert translator.usage is not None and translator.usage.prompt_tokens == 9
    assert (translator.model, translator.finish_reasons) == ("gpt-5", ["stop"])


def test_stream_finish_reasons_of_every_choice_by_index() -> None:
    """For the attempt span: each choice's finish reason, by index, and the model of the
    first chunk without content (content chunks are not inspected)."""
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    assert (translator.model, translator.finish_reasons) == (None, [])
    translator.feed(b'data: {"model":"m-1","choices":[{"index":0,"delta":{"role":"assistant"}},'
                    b'{"index":1,"delta":{"role":"assistant"}}]}\n\n'
                    b'data: {"model":"m-2","choices":[{"index":1,"delta":{},'
                    b'"finish_reason":"length"}]}\n\n'
                    b'data: {"model":"m-2","choices":[{"index":0,"delta":{},'
                    b'"finish_reason":"stop"}]}\n\n')
    assert (translator.model, translator.finish_reasons) == ("m-1", ["stop", "length"])


def test_stream_without_finish_reason_or_done_is_broken() -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    translator.feed(STREAM[: STREAM.index(b'data: {"id":"c1","object":"chat.completion.chunk",'
                                          b'"created":1,"model":"gpt-5","choices":[{"index":0,'
                                          b'"delta":{},"finish_reason":"stop"}]}')])
    with pytest.raises(UpstreamServerError, match="DONE"):
        translator.finish()


def test_stream_with_finish_reason_that_ends_cleanly_without_done_is_complete() -> None:
    """Issue 19: a stream that carried its finish_reason and usage, then ended cleanly
    without `[DONE]`, was reported to the caller as broken."""
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    frames = b"".join(e.frame for e in translator.feed(STREAM[: STREAM.index(b"data: [DONE]")]))
    frames += b"".join(e.frame for e in translator.finish())
    assert frames.endswith(b"data: [DONE]\n\n")
    assert translator.usage is not None and translator.usage.completion_tokens == 2


def test_stream_with_one_of_two_choices_finished_is_still_broken() -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    translator.feed(b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}},'
                    b'{"index":1,"delta":{"role":"assistant"}}]}\n\n'
                    b'data: {"choices":[{"index":0,"delta":{"content":"a"}},'
                    b'{"index":1,"delta":{"content":"b"}}]}\n\n'
                    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
    with pytest.raises(UpstreamServerError, match="DONE"):
        translator.finish()


def test_tool_call_and_completions_text_count_as_content() -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    tool = b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c"}]}}]}\n\n'
    text = b'data: {"choices":[{"index":0,"text":"x","finish_reason":null}]}\n\n'
    assert [e.is_content for e in translator.feed(tool + text)] == [True, True]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"type": "server_error"}, UpstreamServerError),
        ({"code": "rate_limit_exceeded"}, RateLimited),
    ],
)
def test_in_band_error_raises(error: dict[str, str], kind: type[Exception]) -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    with pytest.raises(kind):
        translator.feed(b"data: " + orjson.dumps({"error": {"message": "boom", **error}}) + b"\n\n")


def test_malformed_stream_event_is_a_server_error() -> None:
    with pytest.raises(UpstreamServerError):
        ADAPTER.stream_translator(TARGET, Task.CHAT).feed(b"data: {nope\n\n")


def _error(status: int, message: str = "nope", headers: dict[str, str] | None = None) -> Exception:
    body = orjson.dumps({"error": {"message": message, "type": "t", "param": None, "code": "c"}})
    return ADAPTER.map_error(TARGET, status, headers or {}, body)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, RateLimited),
        (500, UpstreamServerError),
        (502, UpstreamServerError),
        (503, UpstreamServerError),
        (529, UpstreamServerError),
        (401, ProviderAuthError),
        (403, ProviderAuthError),
        (404, ProviderAuthError),
        (400, CallerFault),
        (413, CallerFault),
        (422, CallerFault),
        (408, UpstreamTimeout),
        (409, UpstreamServerError),
        (402, ProviderAuthError),
        (415, UpstreamServerError),
    ],
)
def test_status_table(status: int, kind: type[Exception]) -> None:
    assert type(_error(status)) is kind


def test_caller_fault_keeps_the_providers_message_type_and_code() -> None:
    """Whole here: the router scrubs key material out of it first and cuts it then
    (tests/unit/gateway/test_redaction.py), so a cut cannot split an echoed key."""
    error = _error(400, "x" * 1000)
    assert isinstance(error, CallerFault) and error.upstream_status == 400
    assert (error.provider_type, error.provider_code) == ("t", "c")
    assert "x" * 1000 in error.message


def test_auth_error_never_repeats_the_provider_message() -> None:
    error = _error(401, f"Incorrect API key provided: {KEY[:8]}***")
    assert KEY[:8] not in error.message


def test_retry_after_forms() -> None:
    assert _error(429, headers={"retry-after-ms": "1500", "Retry-After": "9"}).retry_after == 1.5  # type: ignore[attr-defined]
    assert _error(429, headers={"Retry-After": "7"}).retry_after == 7.0  # type: ignore[attr-defined]
    assert _error(429).retry_after is None  # type: ignore[attr-defined]
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert upstream_errors.retry_after({"retry-after": when}, now=1_000_000.0) == 30.0
    assert upstream_errors.retry_after({"retry-after": "soon"}) is None
    assert upstream_errors.retry_after({"retry-after": "-5"}) == 0.0


def test_flat_error_body_of_compatible_servers() -> None:
    body = b'{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}'
    error = ADAPTER.map_error(TARGET, 400, {}, body)
    assert isinstance(error, CallerFault) and "bad" in error.message


def test_non_json_error_body() -> None:
    assert isinstance(
        ADAPTER.map_error(TARGET, 502, {}, b"<html>bad gateway</html>"), UpstreamServerError
    )
