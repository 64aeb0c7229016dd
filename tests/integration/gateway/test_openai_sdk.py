"""The official `openai` SDK, sync and async, streaming and not, against the gateway."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import openai
import pytest

from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

KEY = "sk-test-primary-4f1c9a"
ENV = {"PRIMARY_KEY": KEY}
MESSAGES = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="primary", expected_key=KEY) as f:
        yield f


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fake: FakeOpenAI) -> AsyncIterator[Gateway]:
    docs = [
        endpoint("chat", [openai_target("gpt", fake.base_url, "PRIMARY_KEY", weight=100)]),
        endpoint("summarize", [openai_target("gpt", fake.base_url, "PRIMARY_KEY", weight=100)],
                 namespace="team-a"),
        endpoint("complete", [openai_target("gpt", fake.base_url, "PRIMARY_KEY", weight=100)],
                 task="completions"),
        endpoint("embed", [openai_target("emb", fake.base_url, "PRIMARY_KEY", weight=100)],
                 task="embeddings"),
    ]
    async with running_gateway(tmp_path / "cfg", docs, ENV) as gw:
        yield gw


def _client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="caller-token-xyz",
                              max_retries=0)


async def test_async_chat_non_streaming(gateway: Gateway, fake: FakeOpenAI) -> None:
    client = _client(gateway)
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES, extra_headers={"x-request-id": "req-123"})
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from primary (gpt)."
    assert raw.headers["x-switchyard-endpoint"] == "default/chat"
    assert raw.headers["x-switchyard-target"] == "gpt"
    assert raw.headers["x-switchyard-attempts"] == "1"
    assert raw.headers["x-request-id"] == "req-123"
    sent = fake.requests[-1]
    assert sent.json()["model"] == "gpt"
    assert sent.headers["x-request-id"] == "req-123"
    # The caller's token never goes upstream; the platform key does.
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert "caller-token-xyz" not in str(dict(sent.headers))


async def test_async_chat_streaming(gateway: Gateway) -> None:
    client = _client(gateway)
    stream = await client.chat.completions.create(model="team-a/summarize", messages=MESSAGES,
                                                  stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from primary (gpt)."


async def test_sync_client_streaming_and_not(gateway: Gateway) -> None:
    def call() -> tuple[str, str]:
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
        plain = client.chat.completions.create(model="chat", messages=MESSAGES)
        chunks = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return plain.choices[0].message.content or "", streamed

    plain, streamed = await asyncio.to_thread(call)
    assert plain == streamed == "Hello from primary (gpt)."


async def test_completions_embeddings_and_models(gateway: Gateway) -> None:
    client = _client(gateway)
    done = await client.completions.create(model="complete", prompt="Hi")
    assert done.choices[0].text
    vectors = await client.embeddings.create(model="embed", input=["a", "b"])
    assert len(vectors.data) == 2 and vectors.data[0].embedding
    models = [m.id async for m in client.models.list()]
    assert models == ["chat", "complete", "embed", "team-a/summarize"]
    assert (await client.models.retrieve("team-a/summarize")).id == "team-a/summarize"


async def test_caller_errors_are_openai_style(gateway: Gateway) -> None:
    client = _client(gateway)
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(model="nope", messages=MESSAGES)
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):  # bare names never search other namespaces
        await client.chat.completions.create(model="summarize", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError) as wrong_task:
        await client.chat.completions.create(model="embed", messages=MESSAGES)
    assert "embeddings" in wrong_task.value.message
