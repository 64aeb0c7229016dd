"""Anthropic adapter: OpenAI chat <-> Messages API, streams and errors."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.errors import CallerFault, RateLimited, UpstreamServerError
from switchyard_gateway.providers.anthropic import AnthropicAdapter
from switchyard_schema import Provider, Task

from .helpers import KEY, pieces, run, target

ADAPTER = AnthropicAdapter()
TARGET = target(Provider.ANTHROPIC, "claude-sonnet-4-5")

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def translate(body: dict[str, object], stream: bool = False) -> dict[str, object]:
    request = ADAPTER.build_request(TARGET, Task.CHAT, body, ApiKey(KEY), stream)
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    return orjson.loads(request.body)  # type: ignore[no-any-return]


def test_system_messages_max_tokens_and_sampling() -> None:
    payload = translate(
        {
            "model": "chat",
            "temperature": 1.7,
            "top_p": 0.9,
            "stop": "END",
            "user": "u1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
                {"role": "user", "content": "Hi"},
            ],
        },
        stream=True,
    )
    assert payload == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": "Be brief.\n\nNo emoji.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "temperature": 1.0,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "stream": True,
    }
    assert (
        translate({"messages": [], "max_completion_tokens": 50, "max_tokens": 9})["max_tokens"]
        == 50
    )


def test_tools_tool_calls_and_results() -> None:
    payload = translate(
        {
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "parallel_tool_calls": False,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Weather?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                        },
                        {
                            "id": "t2",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "rain"},
                {
                    "role": "tool",
                    "tool_call_id": "t2",
                    "content": [{"type": "text", "text": "sun"}],
                },
            ],
        }
    )
    assert payload["tools"] == [
        {
            "name": "weather",
            "description": "Weather.",
            "input_schema": WEATHER["function"]["parameters"],
        }
    ]  # type: ignore[index]
    assert payload["tool_choice"] == {
        "type": "tool",
        "name": "weather",
        "disable_parallel_tool_use": True,
    }
    assert payload["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "t2", "name": "weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [  # both results in the one user turn
                {"type": "tool_result", "tool_use_id": "t1", "content": "rain"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "sun"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
def test_tool_choice(choice: str, expected: dict[str, str]) -> None:
    assert (
        translate({"messages": [], "tools": [WEATHER], "tool_choice": choice})["tool_choice"]
        == expected
    )


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [], "n": 2},
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        {"messages": [{"role": "function", "name": "f", "content": "x"}]},
    ],
)
def test_untranslatable_requests_are_refused_before_sending(body: dict[str, object]) -> None:
    with pytest.raises(CallerFault):
        translate(body)


MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 20},
}


def test_response_translation() -> None:
    parsed = ADAPTER.parse_response(TARGET, Task.CHAT, orjson.dumps(MESSAGE))
    body = orjson.loads(parsed.body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    assert body["usage"] == {"prompt_tokens": 15, "completion_tokens": 20, "total_tokens": 35}
    assert parsed.usage is not None and parsed.usage.prompt_tokens == 15


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
    ],
)
def test_stop_reasons(reason: str, finish: str) -> None:
    raw = orjson.dumps({**MESSAGE, "stop_reason": reason})
    assert (
        orjson.loads(ADAPTER.parse_response(TARGET, Task.CHAT, raw).body)["choices"][0][
            "finish_reason"
        ]
        == finish
    )


def test_broken_2xx_body() -> None:
    with pytest.raises(UpstreamServerError):
        ADAPTER.parse_response(TARGET, Task.CHAT, b'{"type": "message"')


def _event(name: str, data: dict[str, object]) -> bytes:
    return (
        b"event: "
        + name.encode()
        + b"\r\ndata: "
        + orjson.dumps({"type": name, **data})
        + b"\r\n\r\n"
    )


STREAM = b"".join(
    [
        _event(
            "message_start",
            {
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 12, "output_tokens": 1},
                }
            },
        ),
        _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        _event("ping", {}),
        _event(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Olá, "}}
        ),
        _event(
            "content_block_delta",
            {"index": 0, "delta": {"type": "text_delta", "text": "checking."}},
        ),
        _event("content_block_stop", {"index": 0}),
        _event(
            "content_block_start",
            {
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {},
                },
            },
        ),
        _event(
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        ),
        _event(
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
        ),
        _event(
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": ' "Oslo"}'}},
        ),
        _event("content_block_stop", {"index": 1}),
        _event(
            "message_delta",
            {
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 30},
            },
        ),
        _event("message_stop", {}),
    ]
)


def _chunks(events: list[object]) -> list[dict[str, object]]:
    frames = [e.frame for e in events]  # type: ignore[attr-defined]
    assert frames[-1] == b"data: [DONE]\n\n"
    return [orjson.loads(f[len(b"data: ") :]) for f in frames[:-1]]


@pytest.mark.parametrize("size", [1, 5, 13, 100, len(STREAM)])
def test_stream_translation_at_any_split(size: int) -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    events = run(translator, pieces(STREAM, size))
    assert [e.is_content for e in events] == [False, True, True, True, True, True, False, False]
    chunks = _chunks(events)
    deltas = [c["choices"][0]["delta"] for c in chunks]  # type: ignore[index]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas) == "Olá, checking."
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "weather", "arguments": ""},
    }
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Oslo"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"  # type: ignore[index]
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}
    assert translator.usage is not None and translator.usage.completion_tokens == 30
    assert (translator.model, translator.finish_reasons) == ("claude-sonnet-4-5", ["tool_calls"])


def test_error_event_before_content_raises_the_mapped_error() -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    head = STREAM[: STREAM.index(b"event: content_block_delta")]
    error = _event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    with pytest.raises(UpstreamServerError) as raised:
        run(translator, [head, error])
    assert raised.value.upstream_status == 529
    with pytest.raises(RateLimited):
        ADAPTER.stream_translator(TARGET, Task.CHAT).feed(
            _event("error", {"error": {"type": "rate_limit_error", "message": "slow down"}})
        )


def test_stream_without_a_stop_reason_is_broken() -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    with pytest.raises(UpstreamServerError, match="message_stop"):
        run(translator, [STREAM[: STREAM.index(b"event: message_delta")]])


def test_stream_with_a_stop_reason_that_ends_without_message_stop_is_complete() -> None:
    """Issue 19: the stop reason and usage came (`message_delta`), then a clean end."""
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    chunks = _chunks(run(translator, [STREAM[: STREAM.index(b"event: message_stop")]]))
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"  # type: ignore[index]
    assert translator.usage is not None and translator.usage.completion_tokens == 30


def test_error_body_and_529() -> None:
    error_body = {"type": "overloaded_error", "message": "Overloaded"}
    body = orjson.dumps({"type": "error", "error": error_body, "request_id": "r"})
    error = ADAPTER.map_error(TARGET, 529, {"retry-after": "3"}, body)
    assert isinstance(error, UpstreamServerError) and error.retry_after == 3.0
    assert "overloaded_error" in error.message
    bad = ADAPTER.map_error(
        TARGET,
        400,
        {},
        orjson.dumps(
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: too big"},
            }
        ),
    )
    assert isinstance(bad, CallerFault) and "max_tokens: too big" in bad.message
    assert bad.provider_type == "invalid_request_error"


_plain = st.text(min_size=1, max_size=40)


@given(system=_plain, turns=st.lists(_plain, min_size=1, max_size=6))
def test_text_round_trip(system: str, turns: list[str]) -> None:
    messages = [{"role": "system", "content": system}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)
    ]
    payload = translate({"messages": messages})
    assert payload["system"] == system
    assert [m["content"][0]["text"] for m in payload["messages"]] == turns  # type: ignore[attr-defined]
    reply = {**MESSAGE, "content": [{"type": "text", "text": turns[-1]}], "stop_reason": "end_turn"}
    body = orjson.loads(ADAPTER.parse_response(TARGET, Task.CHAT, orjson.dumps(reply)).body)
    assert body["choices"][0]["message"]["content"] == turns[-1]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"content": ["not a block"], "usage": 5}',
        b'{"content": [{"type": "tool_use", "input": {"a": 1}, "name": 3}], "stop_reason": 7}',
    ],
)
def test_odd_shapes_never_crash(raw: bytes) -> None:
    with contextlib.suppress(UpstreamServerError):
        ADAPTER.parse_response(TARGET, Task.CHAT, raw)


def test_stream_event_of_the_wrong_shape_is_a_server_error() -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    with pytest.raises(UpstreamServerError):
        translator.feed(
            b"event: content_block_start\n"
            b'data: {"index": "x", "content_block": {"type": "tool_use"}}\n\n'
        )
