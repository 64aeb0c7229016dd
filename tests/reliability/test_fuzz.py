"""Property-based fuzzing (hypothesis): parsing, provider translations, config validation.

The property everywhere: arbitrary input yields either a result or the gateway's own
error type for that layer (a `CallerError` for request parsing, an `UpstreamError` or
`CallerError` from an adapter, `Problem`s / `InvalidEndpoint` from the schema), never any
other exception. For well-formed chat bodies, the OpenAI -> Anthropic / Gemini request
translations always produce a JSON-serialisable payload that keeps the conversation.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchyard_gateway import errors
from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.http.parsing import check_body, parse_json
from switchyard_gateway.providers import registry
from switchyard_schema import InvalidEndpoint, Provider, Task, load_config, validate_manifest
from tests.unit.providers.helpers import target

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
KEY = ApiKey("sk-fuzz-0000-1111")

scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(
    allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=20)
roles = st.sampled_from(["system", "user", "assistant", "tool", "developer", "function", "x"])
content = st.text(max_size=40) | st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "input_audio", "weird"]),
     "text": st.text(max_size=20)}), max_size=3) | json_values
messages = st.lists(st.fixed_dictionaries({"role": roles, "content": content},
                                          optional={"name": st.text(max_size=5),
                                                    "tool_call_id": st.text(max_size=5)}),
                    min_size=1, max_size=5)
chat_bodies = st.fixed_dictionaries(
    {"model": st.just("chat"), "messages": messages},
    optional={"temperature": json_values, "max_tokens": json_values, "stop": json_values,
              "tools": json_values, "tool_choice": json_values, "n": json_values,
              "stream": json_values, "top_p": json_values, "user": json_values,
              "response_format": json_values, "stream_options": json_values})
PROVIDERS = [Provider.OPENAI, Provider.ANTHROPIC, Provider.GEMINI, Provider.AZURE_OPENAI,
             Provider.MISTRAL, Provider.OPENAI_COMPATIBLE]


@FUZZ
@given(st.binary(max_size=300) | json_values.map(orjson.dumps))
def test_request_parsing_never_crashes(raw: bytes) -> None:
    for task in Task:
        with contextlib.suppress(errors.CallerError):
            check_body(parse_json(raw), task)


@FUZZ
@given(chat_bodies)
def test_checked_bodies_keep_their_fields(body: dict[str, Any]) -> None:
    try:
        parsed = check_body(body, Task.CHAT)
    except errors.CallerError:
        return
    assert parsed.body is body and parsed.model == "chat"
    assert isinstance(parsed.stream, bool)


@FUZZ
@given(body=chat_bodies, stream=st.booleans(), provider=st.sampled_from(PROVIDERS))
def test_request_translation_is_total(body: dict[str, Any], stream: bool,
                                      provider: Provider) -> None:
    adapter = registry.adapter_for(provider)
    tgt = target(provider, base_url="http://127.0.0.1:1/v1", deployment="d", api_version="v")
    try:
        request = adapter.build_request(tgt, Task.CHAT, body, KEY, stream)
    except (errors.CallerError, errors.UpstreamError):
        return
    sent = orjson.loads(request.body) if isinstance(request.body, bytes) else request.body
    assert isinstance(sent, dict)
    assert KEY.reveal() not in request.url
    if provider is Provider.ANTHROPIC:
        assert isinstance(sent["messages"], list)
    if provider is Provider.GEMINI:
        assert isinstance(sent["contents"], list)


@FUZZ
@given(raw=st.binary(max_size=200) | json_values.map(orjson.dumps),
       provider=st.sampled_from(PROVIDERS), task=st.sampled_from(list(Task)))
def test_response_translation_is_total(raw: bytes, provider: Provider, task: Task) -> None:
    adapter = registry.adapter_for(provider)
    tgt = target(provider, base_url="http://127.0.0.1:1/v1")
    try:
        parsed = adapter.parse_response(tgt, task, raw)
    except errors.UpstreamError:
        return
    orjson.loads(parsed.body)


@FUZZ
@given(status=st.integers(100, 599), raw=st.binary(max_size=120) | json_values.map(
    orjson.dumps), provider=st.sampled_from(PROVIDERS),
    retry=st.none() | st.text(max_size=12))
def test_error_mapping_is_total(status: int, raw: bytes, provider: Provider,
                                retry: str | None) -> None:
    adapter = registry.adapter_for(provider)
    headers = {"retry-after": retry} if retry is not None else {}
    exc = adapter.map_error(target(provider), status, headers, raw)  # type: ignore[arg-type]
    assert isinstance(exc, errors.UpstreamError)
    assert len(exc.message) <= errors.DETAIL_LIMIT + 200


frames = st.lists(st.sampled_from([
    b"data: [DONE]\n\n", b"data: {}\n\n", b"event: error\ndata: {\"error\": {}}\n\n",
    b"data: {\"choices\": [{\"delta\": {\"content\": \"x\"}}]}\n\n", b"\r\n", b": ping\n\n",
    b"event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n", b"data: {broken\n\n",
    b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"y\"}]}}]}\n\n",
]) | st.binary(max_size=40), max_size=8)


@FUZZ
@given(chunks=frames, provider=st.sampled_from(PROVIDERS), cut=st.integers(1, 7))
def test_stream_translation_is_total(chunks: list[bytes], provider: Provider, cut: int) -> None:
    translator = registry.adapter_for(provider).stream_translator(target(provider), Task.CHAT)
    raw = b"".join(chunks)
    try:
        for i in range(0, len(raw), cut):
            for event in translator.feed(raw[i:i + cut]):
                assert event.frame.startswith(b"data: ") and event.frame.endswith(b"\n\n")
        translator.finish()
    except errors.UpstreamError:
        pass


@FUZZ
@given(json_values)
def test_validator_is_total(spec: Any) -> None:
    manifest = {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
                "metadata": {"name": "x"}, "spec": spec}
    for problem in validate_manifest(manifest):
        assert problem.message


@FUZZ
@given(st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_config_payload_loader_is_total(raw: bytes) -> None:
    with pytest.raises(InvalidEndpoint):
        load_config(raw)
