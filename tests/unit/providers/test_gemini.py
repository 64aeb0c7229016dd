"""Gemini adapter: OpenAI chat/embeddings <-> generateContent, streams, errors, key placement."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.errors import (
    CallerFault,
    ProviderAuthError,
    RateLimited,
    UpstreamServerError,
)
from switchyard_gateway.providers.gemini import GeminiAdapter
from switchyard_schema import Provider, Task

from .helpers import KEY, pieces, run, target

ADAPTER = GeminiAdapter()
TARGET = target(Provider.GEMINI, "gemini-2.5-flash")
BASE = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


def translate(
    body: dict[str, object], stream: bool = False, task: Task = Task.CHAT
) -> tuple[str, dict[str, object]]:
    request = ADAPTER.build_request(TARGET, task, body, ApiKey(KEY), stream)
    assert request.headers["x-goog-api-key"] == KEY
    assert KEY not in request.url
    return request.url, orjson.loads(request.body)


def test_urls_and_key_only_in_header() -> None:
    assert translate({"messages": []})[0] == BASE + ":generateContent"
    assert translate({"messages": []}, stream=True)[0] == BASE + ":streamGenerateContent?alt=sse"
    assert translate({"input": "x"}, task=Task.EMBEDDINGS)[0] == BASE + ":embedContent"
    assert translate({"input": ["x", "y"]}, task=Task.EMBEDDINGS)[0] == BASE + ":batchEmbedContents"


def test_chat_translation() -> None:
    _, payload = translate(
        {
            "temperature": 0.3,
            "max_tokens": 100,
            "stop": ["X"],
            "tools": [WEATHER],
            "tool_choice": "required",
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Weather?"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QQ=="}},
                    ],
                },
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": '{"sky": "rain"}'},
                {"role": "tool", "tool_call_id": "c1", "content": "plain text"},
            ],
        }
    )
    assert payload == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Weather?"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "QQ=="}},
                ],
            },
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "weather", "response": {"sky": "rain"}}},
                    {
                        "functionResponse": {
                            "name": "weather",
                            "response": {"content": "plain text"},
                        }
                    },
                ],
            },
        ],
        "generationConfig": {
            "temperature": 0.3,
            "maxOutputTokens": 100,
            "stopSequences": ["X"],
            "responseMimeType": "application/json",
        },
        "tools": [
            {"functionDeclarations": [{"name": "weather", "parameters": {"type": "object"}}]}
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }


def test_embeddings_translation_and_refusal() -> None:
    _, payload = translate({"input": ["a", "b"], "dimensions": 4}, task=Task.EMBEDDINGS)
    assert payload == {
        "requests": [
            {
                "model": "models/gemini-2.5-flash",
                "content": {"parts": [{"text": "a"}]},
                "outputDimensionality": 4,
            },
            {
                "model": "models/gemini-2.5-flash",
                "content": {"parts": [{"text": "b"}]},
                "outputDimensionality": 4,
            },
        ]
    }
    with pytest.raises(CallerFault):
        translate({"input": [1, 2, 3]}, task=Task.EMBEDDINGS)


RESPONSE = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "thinking...", "thought": True},
                    {"text": "It rains."},
                    {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 8,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 2,
        "totalTokenCount": 15,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "r1",
}


def test_response_translation() -> None:
    parsed = ADAPTER.parse_response(TARGET, Task.CHAT, orjson.dumps(RESPONSE))
    body = orjson.loads(parsed.body)
    choice = body["choices"][0]
    assert choice["message"]["content"] == "It rains."
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"city":"Oslo"}',
    }
    assert choice["finish_reason"] == "tool_calls"
    assert body["usage"] == {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15}


@pytest.mark.parametrize(
    ("reason", "finish"), [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter")]
)
def test_finish_reasons(reason: str, finish: str) -> None:
    raw = orjson.dumps(
        {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    )
    assert (
        orjson.loads(ADAPTER.parse_response(TARGET, Task.CHAT, raw).body)["choices"][0][
            "finish_reason"
        ]
        == finish
    )


def test_blocked_prompt_and_broken_body() -> None:
    raw = b'{"promptFeedback": {"blockReason": "SAFETY"}}'
    assert (
        orjson.loads(ADAPTER.parse_response(TARGET, Task.CHAT, raw).body)["choices"][0][
            "finish_reason"
        ]
        == "content_filter"
    )
    with pytest.raises(UpstreamServerError):
        ADAPTER.parse_response(TARGET, Task.CHAT, b'{"candidates": [')


def test_embedding_responses() -> None:
    one = orjson.loads(
        ADAPTER.parse_response(TARGET, Task.EMBEDDINGS, b'{"embedding": {"values": [0.5, 1]}}').body
    )
    assert one["data"] == [{"object": "embedding", "index": 0, "embedding": [0.5, 1]}]
    many = orjson.loads(
        ADAPTER.parse_response(
            TARGET, Task.EMBEDDINGS, b'{"embeddings": [{"values": [1]}, {"values": [2]}]}'
        ).body
    )
    assert [d["embedding"] for d in many["data"]] == [[1], [2]]


def _frame(parts: list[dict[str, object]], finish: str | None = None, usage: int = 1) -> bytes:
    candidate: dict[str, object] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    data = {
        "candidates": [candidate],
        "responseId": "r1",
        "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": usage},
    }
    return b"data: " + orjson.dumps(data) + b"\r\n\r\n"


STREAM = (
    _frame([{"text": "Ciao "}])
    + _frame([{"text": "mondo"}], usage=2)
    + _frame([{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}], "STOP", usage=3)
)


@pytest.mark.parametrize("size", [1, 7, 50, len(STREAM)])
def test_stream_translation_at_any_split(size: int) -> None:
    translator = ADAPTER.stream_translator(TARGET, Task.CHAT)
    events = run(translator, pieces(STREAM, size))
    assert [e.is_content for e in events] == [True, True, True, False, False]
    assert events[-1].frame == b"data: [DONE]\n\n"
    chunks = [orjson.loads(e.frame[len(b"data: ") :]) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": "Ciao "}
    assert deltas[2]["tool_calls"][0]["index"] == 0
    assert deltas[2]["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"city":"Oslo"}',
    }
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}
    assert (translator.model, translator.finish_reasons) == ("gemini-2.5-flash", ["tool_calls"])


def test_stream_without_finish_reason_is_broken() -> None:
    with pytest.raises(UpstreamServerError, match="finishReason"):
        run(ADAPTER.stream_translator(TARGET, Task.CHAT), [_frame([{"text": "Ciao"}])])


def test_error_event_in_stream() -> None:
    error = b'data: {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}\n\n'
    with pytest.raises(UpstreamServerError):
        ADAPTER.stream_translator(TARGET, Task.CHAT).feed(error)


def test_errors() -> None:
    bad_key = orjson.dumps(
        {
            "error": {
                "code": 400,
                "message": "API key not valid",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                    }
                ],
            }
        }
    )
    assert isinstance(ADAPTER.map_error(TARGET, 400, {}, bad_key), ProviderAuthError)
    quota = orjson.dumps(
        {
            "error": {
                "code": 429,
                "message": "quota",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
                ],
            }
        }
    )
    limited = ADAPTER.map_error(TARGET, 429, {}, quota)
    assert isinstance(limited, RateLimited) and limited.retry_after == 37.0
    assert ADAPTER.map_error(TARGET, 429, {"Retry-After": "2"}, quota).retry_after == 2.0
    invalid = orjson.dumps(
        {"error": {"code": 400, "message": "bad schema", "status": "INVALID_ARGUMENT"}}
    )
    assert isinstance(ADAPTER.map_error(TARGET, 400, {}, invalid), CallerFault)


_plain = st.text(min_size=1, max_size=40)


@given(system=_plain, turns=st.lists(_plain, min_size=1, max_size=6))
def test_text_round_trip(system: str, turns: list[str]) -> None:
    messages = [{"role": "system", "content": system}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)
    ]
    _, payload = translate({"messages": messages})
    assert payload["systemInstruction"] == {"parts": [{"text": system}]}
    contents = payload["contents"]
    assert [c["parts"][0]["text"] for c in contents] == turns  # type: ignore[attr-defined]
    assert [c["role"] for c in contents] == [
        "user" if i % 2 == 0 else "model" for i in range(len(turns))
    ]  # type: ignore[attr-defined]
    reply = {"candidates": [{"content": {"parts": [{"text": turns[-1]}]}, "finishReason": "STOP"}]}
    body = orjson.loads(ADAPTER.parse_response(TARGET, Task.CHAT, orjson.dumps(reply)).body)
    assert body["choices"][0]["message"]["content"] == turns[-1]


def test_bodies_of_the_wrong_shape_are_server_errors() -> None:
    with pytest.raises(UpstreamServerError):
        ADAPTER.parse_response(TARGET, Task.CHAT, b'{"candidates": [{"content": "text"}]}')
    with pytest.raises(UpstreamServerError):
        ADAPTER.stream_translator(TARGET, Task.CHAT).feed(
            b'data: {"candidates": [{"index": "x"}]}\n\n'
        )
