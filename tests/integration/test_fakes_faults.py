"""The fakes' fault injection and scripting, over real HTTP, and the fake CLI as a process."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from switchyard_testing.fakes import Behaviour, FakeAnthropic, FakeOpenAI, Fault, Script

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
STREAM = {**CHAT, "stream": True}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="f") as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def chat(
    session: aiohttp.ClientSession,
    fake: FakeOpenAI,
    body: dict[str, object] = CHAT,
    **kwargs: object,
) -> tuple[int, dict[str, str], bytes]:
    async with session.post(fake.base_url + "/chat/completions", json=body, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, dict(response.headers), await response.read()


async def test_rate_limit_with_and_without_retry_after(
    session: aiohttp.ClientSession, fake: FakeOpenAI
) -> None:
    fake.script.push(Behaviour(Fault.RATE_LIMIT, retry_after=2.5), Fault.RATE_LIMIT_BARE)
    status, headers, _ = await chat(session, fake)
    assert (status, headers.get("Retry-After")) == (429, "2.5")
    status, headers, _ = await chat(session, fake)
    assert (status, headers.get("Retry-After")) == (429, None)
    assert (await chat(session, fake))[0] == 200


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.SERVER_ERROR, 500),
        (Fault.BAD_GATEWAY, 502),
        (Fault.UNAVAILABLE, 503),
        (Fault.OVERLOADED, 529),
    ],
)
async def test_server_errors(
    session: aiohttp.ClientSession, fake: FakeOpenAI, fault: Fault, status: int
) -> None:
    fake.script.push(fault)
    assert (await chat(session, fake))[0] == status


async def test_reset_before_response(session: aiohttp.ClientSession, fake: FakeOpenAI) -> None:
    fake.script.push(Fault.RESET)
    with pytest.raises(aiohttp.ClientConnectionError):
        await chat(session, fake)
    assert (await chat(session, fake))[0] == 200  # the fake itself survives


async def test_reset_mid_stream(session: aiohttp.ClientSession, fake: FakeOpenAI) -> None:
    fake.script.push(Fault.RESET_STREAM)
    with pytest.raises(aiohttp.ClientPayloadError):
        await chat(session, fake, STREAM)


async def test_cut_stream_ends_cleanly_without_terminator(
    session: aiohttp.ClientSession, fake: FakeOpenAI
) -> None:
    fake.script.push(Behaviour(Fault.CUT_STREAM, after_frames=2))
    status, _, raw = await chat(session, fake, STREAM)
    assert status == 200 and raw.count(b"data: ") == 2 and b"[DONE]" not in raw


async def test_malformed_bodies(session: aiohttp.ClientSession, fake: FakeOpenAI) -> None:
    fake.script.push(Fault.MALFORMED, Fault.MALFORMED)
    status, _, raw = await chat(session, fake)
    assert status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    status, _, raw = await chat(session, fake, STREAM)
    assert status == 200 and b"[DONE]" not in raw


async def test_hang_outlasts_a_client_timeout_and_close_releases_it(
    session: aiohttp.ClientSession,
) -> None:
    server = await FakeOpenAI.start()
    server.script.push(Behaviour(Fault.HANG, hang_seconds=60))
    with pytest.raises(asyncio.TimeoutError):
        await chat(session, server, timeout=aiohttp.ClientTimeout(total=0.3))  # type: ignore[arg-type]
    await server.close()  # returns although the handler was still sleeping


async def test_expected_key_and_recorded_headers(session: aiohttp.ClientSession) -> None:
    async with await FakeOpenAI.start(expected_key="right") as server:
        assert (await chat(session, server, headers={"Authorization": "Bearer wrong"}))[0] == 401  # type: ignore[arg-type]
        assert (await chat(session, server, headers={"Authorization": "Bearer right"}))[0] == 200  # type: ignore[arg-type]
        assert [r.headers["Authorization"] for r in server.requests] == [
            "Bearer wrong",
            "Bearer right",
        ]
        assert "right" not in repr(server.requests[-1])


async def test_per_model_script(session: aiohttp.ClientSession, fake: FakeOpenAI) -> None:
    fake.script.push(Fault.UNAVAILABLE, model="primary")
    assert (await chat(session, fake, {**CHAT, "model": "other"}))[0] == 200
    assert (await chat(session, fake, {**CHAT, "model": "primary"}))[0] == 503
    assert [r.model for r in fake.requests] == ["other", "primary"]


def test_fault_rates_are_seeded_and_bounded() -> None:
    first = Script({Fault.UNAVAILABLE: 0.3, Fault.RATE_LIMIT: 0.1}, seed=7)
    second = Script({Fault.UNAVAILABLE: 0.3, Fault.RATE_LIMIT: 0.1}, seed=7)
    a = [first.next().fault for _ in range(1000)]
    assert a == [second.next().fault for _ in range(1000)]
    assert 200 < a.count(Fault.UNAVAILABLE) < 400 and 50 < a.count(Fault.RATE_LIMIT) < 150
    with pytest.raises(ValueError):
        Script({Fault.UNAVAILABLE: 0.8, Fault.RATE_LIMIT: 0.5})


async def test_anthropic_in_band_error_before_content(session: aiohttp.ClientSession) -> None:
    async with await FakeAnthropic.start() as server:
        server.script.push(Fault.IN_BAND_ERROR)
        body = {"model": "c", "max_tokens": 5, "messages": [], "stream": True}
        async with session.post(server.url + "/v1/messages", json=body) as response:
            raw = await response.read()
        assert response.status == 200
        assert (
            raw.startswith(b"event: message_start")
            and b"event: error" in raw
            and b"text_delta" not in raw
        )


async def test_control_routes(session: aiohttp.ClientSession, fake: FakeOpenAI) -> None:
    spec = {"push": [{"fault": "rate_limit", "retry_after": 4}], "model": "m"}
    async with session.post(fake.url + "/_fake/script", json=spec) as response:
        assert response.status == 200
    status, headers, _ = await chat(session, fake)
    assert (status, headers["Retry-After"]) == (429, "4")
    async with session.get(fake.url + "/_fake/requests") as response:
        listing = await response.json()
    assert listing["count"] == 1 and listing["requests"][0] == {
        "method": "POST",
        "path": "/v1/chat/completions",
        "model": "m",
        "stream": False,
    }


async def test_cli_process(session: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchyard_testing.fakes",
        "--provider",
        "anthropic",
        "--port",
        "0",
        "--name",
        "proc",
        "--fault-rate",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().split()
        assert line[:2] == ["listening", "anthropic"]
        body = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}
        async with session.post(line[2] + "/v1/messages", json=body) as response:
            message = await response.json()
        assert "proc" in message["content"][0]["text"]
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_no_done_sends_everything_but_the_terminator(
    session: aiohttp.ClientSession, fake: FakeOpenAI
) -> None:
    fake.script.push(Fault.NO_DONE)
    status, _, body = await chat(session, fake, STREAM)
    assert status == 200
    assert b'"finish_reason":"stop"' in body and b"[DONE]" not in body


async def test_stall_pauses_mid_stream_then_finishes(
    session: aiohttp.ClientSession, fake: FakeOpenAI
) -> None:
    fake.script.push(Behaviour(Fault.STALL, after_frames=2, hang_seconds=0.3))
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, _, body = await chat(session, fake, STREAM)
    assert status == 200 and body.endswith(b"data: [DONE]\n\n")
    assert loop.time() - started >= 0.3


@pytest.mark.parametrize(
    ("fault", "code", "param"),
    [
        (Fault.CONTEXT_LENGTH, "context_length_exceeded", "messages"),
        (Fault.CONTENT_FILTER, "content_policy_violation", "prompt"),
    ],
)
async def test_structured_400s(
    session: aiohttp.ClientSession, fake: FakeOpenAI, fault: Fault, code: str, param: str
) -> None:
    fake.script.push(fault)
    status, _, body = await chat(session, fake)
    error = orjson.loads(body)["error"]
    assert (status, error["code"], error["param"]) == (400, code, param)
    assert fake.requests[-1].at > 0
