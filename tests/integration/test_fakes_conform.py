"""The fakes speak the real wire formats, and the adapters' outputs are valid OpenAI.

Every body a fake sends (responses, stream events, error bodies) is validated against the
provider's own SDK types, so the fakes cannot drift from the real APIs; then each adapter
is run against its fake over real HTTP and its translated output is validated against the
`openai` types the gateway's callers use.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from google.genai import types as genai
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.shared import ErrorObject
from pydantic import TypeAdapter

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.config.compiled import CompiledTarget
from switchyard_gateway.providers.registry import adapter_for
from switchyard_gateway.providers.sse import SseDecoder, SseEvent
from switchyard_schema import Provider, Task
from switchyard_testing.fakes import FakeAnthropic, FakeGemini, FakeOpenAI, FakeProvider, Fault
from tests.unit.providers import helpers

KEY = "fake-key-never-logged"
CHAT = {
    "model": "m",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
}
OPENAI_TOOL = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object"}},
}
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="o", expected_key=KEY) as fake:
        yield fake


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[FakeAnthropic]:
    async with await FakeAnthropic.start(name="a", expected_key=KEY) as fake:
        yield fake


@pytest.fixture
async def gemini_fake() -> AsyncIterator[FakeGemini]:
    async with await FakeGemini.start(name="g", expected_key=KEY) as fake:
        yield fake


async def post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, bytes]:
    async with session.post(url, data=orjson.dumps(body), headers=headers) as response:
        return response.status, await response.read()


def events(raw: bytes) -> list[SseEvent]:
    decoder = SseDecoder()
    return decoder.feed(raw) + decoder.finish()


# The fakes against the providers' SDK types.

OPENAI_AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize("tools", [False, True])
async def test_openai_chat_bodies(
    session: aiohttp.ClientSession, openai_fake: FakeOpenAI, tools: bool
) -> None:
    body = {**CHAT, "tools": [OPENAI_TOOL]} if tools else CHAT
    url = openai_fake.base_url + "/chat/completions"
    status, raw = await post(session, url, body, OPENAI_AUTH)
    assert status == 200
    completion = ChatCompletion.model_validate_json(raw)
    assert bool(completion.choices[0].message.tool_calls) is tools
    stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    status, raw = await post(session, url, stream_body, OPENAI_AUTH)
    decoded = events(raw)
    assert decoded[-1].data == b"[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(e.data) for e in decoded[:-1]]
    assert chunks[-1].usage is not None and chunks[-1].choices == []


async def test_openai_completions_embeddings_and_azure(
    session: aiohttp.ClientSession, openai_fake: FakeOpenAI
) -> None:
    _, raw = await post(
        session, openai_fake.base_url + "/completions", {"model": "m", "prompt": "x"}, OPENAI_AUTH
    )
    Completion.model_validate_json(raw)
    _, raw = await post(
        session,
        openai_fake.base_url + "/completions",
        {"model": "m", "prompt": "x", "stream": True},
        OPENAI_AUTH,
    )
    for event in events(raw)[:-1]:
        # The SDK reuses `Completion` for stream chunks but declares finish_reason non-null,
        # while the API sends null until the last chunk (the SDK builds chunks unvalidated).
        chunk = orjson.loads(event.data)
        for choice in chunk["choices"]:
            choice["finish_reason"] = choice["finish_reason"] or "stop"
        Completion.model_validate(chunk)
    for fmt in ("float", "base64"):
        body = {"model": "e", "input": ["a", "b"], "encoding_format": fmt}
        _, raw = await post(session, openai_fake.base_url + "/embeddings", body, OPENAI_AUTH)
        data = orjson.loads(raw)
        if fmt == "base64":  # the SDK decodes base64 itself before its type sees the vector
            for item in data["data"]:
                packed = base64.b64decode(item["embedding"])
                item["embedding"] = list(struct.unpack(f"<{len(packed) // 4}f", packed))
        assert len(CreateEmbeddingResponse.model_validate(data).data) == 2
    azure = openai_fake.url + "/openai/deployments/dep/chat/completions?api-version=2024-10-21"
    _, raw = await post(session, azure, CHAT, {"api-key": KEY})
    assert ChatCompletion.model_validate_json(raw).model == "dep"
    assert openai_fake.requests[-1].headers["api-key"] == KEY


@pytest.mark.parametrize(
    "fault",
    [
        Fault.RATE_LIMIT,
        Fault.SERVER_ERROR,
        Fault.UNAVAILABLE,
        Fault.UNAUTHORIZED,
        Fault.BAD_REQUEST,
    ],
)
async def test_openai_error_bodies(
    session: aiohttp.ClientSession, openai_fake: FakeOpenAI, fault: Fault
) -> None:
    openai_fake.script.push(fault)
    status, raw = await post(session, openai_fake.base_url + "/chat/completions", CHAT, OPENAI_AUTH)
    assert status >= 400
    ErrorObject.model_validate(orjson.loads(raw)["error"])


ANTHROPIC_AUTH = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
ANTHROPIC_BODY = {
    "model": "claude",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Hi"}],
}
ANTHROPIC_TOOL = {"name": "weather", "input_schema": {"type": "object"}}


@pytest.mark.parametrize("tools", [False, True])
async def test_anthropic_bodies(
    session: aiohttp.ClientSession, anthropic_fake: FakeAnthropic, tools: bool
) -> None:
    body = {**ANTHROPIC_BODY, "tools": [ANTHROPIC_TOOL]} if tools else ANTHROPIC_BODY
    url = anthropic_fake.url + "/v1/messages"
    _, raw = await post(session, url, body, ANTHROPIC_AUTH)
    message = Message.model_validate_json(raw)
    assert (message.stop_reason == "tool_use") is tools
    _, raw = await post(session, url, {**body, "stream": True}, ANTHROPIC_AUTH)
    decoded = events(raw)
    for event in decoded:
        if event.event == "ping":  # not in the SDK's union: its stream reader skips pings
            assert orjson.loads(event.data) == {"type": "ping"}
            continue
        parsed = STREAM_EVENT.validate_json(event.data)
        assert parsed.type == event.event
    assert decoded[-1].event == "message_stop"


@pytest.mark.parametrize(
    "fault",
    [Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.OVERLOADED, Fault.UNAUTHORIZED, Fault.BAD_REQUEST],
)
async def test_anthropic_error_bodies(
    session: aiohttp.ClientSession, anthropic_fake: FakeAnthropic, fault: Fault
) -> None:
    anthropic_fake.script.push(fault)
    status, raw = await post(
        session, anthropic_fake.url + "/v1/messages", ANTHROPIC_BODY, ANTHROPIC_AUTH
    )
    assert status >= 400
    ErrorResponse.model_validate_json(raw)


async def test_anthropic_in_band_error_event(
    session: aiohttp.ClientSession, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.script.push(Fault.IN_BAND_ERROR)
    _, raw = await post(
        session,
        anthropic_fake.url + "/v1/messages",
        {**ANTHROPIC_BODY, "stream": True},
        ANTHROPIC_AUTH,
    )
    decoded = events(raw)
    assert [e.event for e in decoded] == ["message_start", "error"]
    error = ErrorResponse.model_validate_json(decoded[-1].data)
    assert error.error.type == "overloaded_error"


GEMINI_AUTH = {"x-goog-api-key": KEY}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
GEMINI_TOOLS = [{"functionDeclarations": [{"name": "weather", "parameters": {"type": "object"}}]}]


@pytest.mark.parametrize("tools", [False, True])
async def test_gemini_bodies(
    session: aiohttp.ClientSession, gemini_fake: FakeGemini, tools: bool
) -> None:
    body = {**GEMINI_BODY, "tools": GEMINI_TOOLS} if tools else GEMINI_BODY
    model = gemini_fake.url + "/v1beta/models/gemini-x"
    _, raw = await post(session, model + ":generateContent", body, GEMINI_AUTH)
    response = genai.GenerateContentResponse.model_validate_json(raw)
    assert bool(response.function_calls) is tools
    _, raw = await post(session, model + ":streamGenerateContent?alt=sse", body, GEMINI_AUTH)
    chunks = [genai.GenerateContentResponse.model_validate_json(e.data) for e in events(raw)]
    assert (
        chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == genai.FinishReason.STOP
    )
    _, raw = await post(
        session, model + ":embedContent", {"content": {"parts": [{"text": "a"}]}}, GEMINI_AUTH
    )
    genai.SingleEmbedContentResponse.model_validate_json(raw)
    batch = {
        "requests": [
            {"model": "models/gemini-x", "content": {"parts": [{"text": t}]}} for t in "ab"
        ]
    }
    _, raw = await post(session, model + ":batchEmbedContents", batch, GEMINI_AUTH)
    assert len(genai.EmbedContentResponse.model_validate_json(raw).embeddings or ()) == 2


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.RATE_LIMIT, 429),
        (Fault.SERVER_ERROR, 500),
        (Fault.UNAVAILABLE, 503),
        (Fault.UNAUTHORIZED, 400),
    ],
)
async def test_gemini_error_bodies(
    session: aiohttp.ClientSession, gemini_fake: FakeGemini, fault: Fault, status: int
) -> None:
    gemini_fake.script.push(fault)
    got, raw = await post(
        session, gemini_fake.url + "/v1beta/models/g:generateContent", GEMINI_BODY, GEMINI_AUTH
    )
    error = orjson.loads(raw)["error"]
    assert got == status == error["code"]
    assert isinstance(error["message"], str) and error["status"].isupper()


# The adapters, against the fakes, produce valid OpenAI bodies.


def _target(provider: Provider, fake: FakeProvider, model: str) -> CompiledTarget:
    base = fake.url if provider is Provider.AZURE_OPENAI else fake.base_url
    return helpers.target(provider, model, base)


async def _through_adapter(
    session: aiohttp.ClientSession,
    provider: Provider,
    fake: FakeProvider,
    task: Task,
    body: dict[str, Any],
    stream: bool,
) -> tuple[list[bytes], Any]:
    adapter = adapter_for(provider)
    target = _target(provider, fake, "model-y")
    request = adapter.build_request(target, task, body, ApiKey(KEY), stream)
    async with session.request(
        request.method, request.url, headers=request.headers, data=request.body
    ) as response:
        assert response.status == 200
        if not stream:
            parsed = adapter.parse_response(target, task, await response.read())
            return [parsed.body], parsed.usage
        translator = adapter.stream_translator(target, task)
        frames = []
        async for chunk in response.content.iter_any():
            frames.extend(e.frame for e in translator.feed(chunk))
        frames.extend(e.frame for e in translator.finish())
        return frames, translator.usage


ADAPTED = [
    (Provider.OPENAI, "openai"),
    (Provider.AZURE_OPENAI, "openai"),
    (Provider.MISTRAL, "openai"),
    (Provider.OPENAI_COMPATIBLE, "openai"),
    (Provider.ANTHROPIC, "anthropic"),
    (Provider.GEMINI, "gemini"),
]


@pytest.fixture
def fakes(
    openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini
) -> dict[str, FakeProvider]:
    return {"openai": openai_fake, "anthropic": anthropic_fake, "gemini": gemini_fake}


@pytest.mark.parametrize(("provider", "fixture"), ADAPTED)
@pytest.mark.parametrize("tools", [False, True])
async def test_adapted_chat_is_valid_openai(
    session: aiohttp.ClientSession,
    fakes: dict[str, FakeProvider],
    provider: Provider,
    fixture: str,
    tools: bool,
) -> None:
    fake = fakes[fixture]
    body = {**CHAT, "tools": [OPENAI_TOOL]} if tools else CHAT
    (raw,), usage = await _through_adapter(session, provider, fake, Task.CHAT, body, stream=False)
    completion = ChatCompletion.model_validate_json(raw)
    assert bool(completion.choices[0].message.tool_calls) is tools
    assert usage is not None and usage.prompt_tokens > 0
    assert fake.requests[-1].headers.get("x-goog-api-key", KEY) == KEY
    frames, usage = await _through_adapter(session, provider, fake, Task.CHAT, body, stream=True)
    assert frames[-1] == b"data: [DONE]\n\n"
    chunks = [ChatCompletionChunk.model_validate_json(f[len(b"data: ") :]) for f in frames[:-1]]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert bool(calls) is tools
    if not tools:
        assert text.startswith("Hello from")


@pytest.mark.parametrize(
    ("provider", "fixture"), [(Provider.OPENAI, "openai"), (Provider.GEMINI, "gemini")]
)
@pytest.mark.parametrize("inputs", ["one", ["one", "two"]])
async def test_adapted_embeddings_are_valid_openai(
    session: aiohttp.ClientSession,
    fakes: dict[str, FakeProvider],
    provider: Provider,
    fixture: str,
    inputs: Any,
) -> None:
    fake = fakes[fixture]
    (raw,), _ = await _through_adapter(
        session, provider, fake, Task.EMBEDDINGS, {"model": "e", "input": inputs}, stream=False
    )
    response = CreateEmbeddingResponse.model_validate_json(raw)
    assert len(response.data) == (1 if isinstance(inputs, str) else 2)


async def test_gemini_key_never_in_url(
    session: aiohttp.ClientSession, gemini_fake: FakeGemini
) -> None:
    await _through_adapter(session, Provider.GEMINI, gemini_fake, Task.CHAT, CHAT, stream=False)
    recorded = gemini_fake.requests[-1]
    assert recorded.query == {} and KEY not in recorded.path
    assert recorded.headers["x-goog-api-key"] == KEY
