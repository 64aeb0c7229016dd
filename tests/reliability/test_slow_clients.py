"""Slow and oversized clients against a real gateway process: the server's own limits.

Slowloris-style callers (headers dribbled a line at a time, or a body that never
finishes) must not hold a connection or a handler for ever: `--keepalive-timeout` closes a
connection without a complete request, and `--body-timeout` answers 408. Huge or garbage
headers are refused by the HTTP parser with a plain 4xx, logged as one line without the
bytes. Afterwards the gateway still serves.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import orjson
import pytest

from switchyard_testing import stack
from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import endpoint, openai_target
from tests.reliability.procs import gateway_process

KEY = "sk-slow-client-9e9e"


@pytest.fixture
async def gateway(tmp_path: pathlib.Path) -> AsyncIterator[stack.Service]:
    async with await FakeOpenAI.start(name="p", expected_key=KEY) as fake:
        doc = endpoint("chat", [openai_target("gpt", fake.base_url, "P_KEY", weight=100)])
        extra = ["--keepalive-timeout", "1", "--body-timeout", "1"]
        async with gateway_process(tmp_path, [doc], {"P_KEY": KEY}, extra) as gw:
            yield gw


async def _raw(gw: stack.Service, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()


async def _still_serves(gw: stack.Service) -> None:
    body = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "x"}]})
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert (await _raw(gw, head + body)).startswith(b"HTTP/1.1 200")


async def test_dribbled_headers_are_cut_off(gateway: stack.Service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n")
    closed = False
    for i in range(300):  # at most ~60 s of dribbling: a hang guard, not a timing
        try:
            writer.write(b"X-Drip-%d: a\r\n" % i)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(1024), 0.2)
        except TimeoutError:
            continue
        except ConnectionError:
            closed = True
            break
        if data == b"" or reader.at_eof():
            closed = True
            break
    writer.close()
    assert closed, "the server kept a connection with incomplete headers open"
    await _still_serves(gateway)


async def test_stalled_body_gets_408(gateway: stack.Service) -> None:
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
    reply = await _raw(gateway, head)
    assert reply.startswith(b"HTTP/1.1 408")
    body = orjson.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout"
    await _still_serves(gateway)


async def test_idle_connection_is_closed(gateway: stack.Service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        assert await asyncio.wait_for(reader.read(1024), 30) == b""
    finally:
        writer.close()


@pytest.mark.parametrize("headers", [
    b"X-Big: " + b"a" * 100_000 + b"\r\n",
    b"".join(b"X-H%d: v\r\n" % i for i in range(1000)),
    b"X-\xffAuthorization: Bearer caller-secret-tok\r\n",
])
async def test_huge_or_garbage_headers_are_refused_cleanly(gateway: stack.Service,
                                                          headers: bytes) -> None:
    reply = await _raw(gateway, b"GET /v1/models HTTP/1.1\r\nHost: gw\r\n" + headers + b"\r\n")
    status = reply.split(b"\r\n", 1)[0].split(b" ")[1]
    assert status.startswith(b"4"), reply[:200]
    assert b"Traceback" not in reply
    await _still_serves(gateway)
    log = gateway.log()
    assert "Traceback" not in log
    assert "caller-secret-tok" not in log  # the refused bytes are not logged
    assert "malformed HTTP request refused" in log
