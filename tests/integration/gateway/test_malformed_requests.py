"""Requests aiohttp's parser refuses get the gateway's JSON error, never aiohttp's plain
text 400 that quotes the raw request head, and with it the caller's `Authorization`.
Played with raw bytes over a socket: a client (or a scanner) sending broken HTTP."""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import AsyncIterator

import orjson
import pytest

from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

TOKEN = b"sk-secret-caller-token-0123456789"
AUTH = b"Authorization: Bearer " + TOKEN + b"\r\n"


@pytest.fixture
async def gateway(tmp_path: pathlib.Path) -> AsyncIterator[Gateway]:
    async with await FakeOpenAI.start() as fake:
        doc = endpoint("chat", [openai_target("a", fake.base_url, "K", weight=100)])
        async with running_gateway(tmp_path / "cfg", [doc], {"K": "sk-upstream"}) as gw:
            yield gw


async def _raw(gw: Gateway, data: bytes) -> bytes:
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)  # the gateway closes after it
    finally:
        writer.close()


@pytest.mark.parametrize("head", [
    pytest.param(b"GET /v1/models?k=" + TOKEN + b" HTTP/1.1 extra\r\n" + AUTH + b"\r\n",
                 id="malformed-request-line"),
    pytest.param(b"GET /v1/models HTTP/1.1\r\nHost: gw\r\n"
                 b"Authorization: Bearer " + TOKEN + b"\x01\r\n\r\n", id="bad-header-value"),
    pytest.param(b"GET /v1/models HTTP/1.1\r\nHost: gw\r\n" + AUTH
                 + b"Bad Header" + TOKEN + b": x\r\n\r\n", id="bad-header-name"),
    pytest.param(b"GET /v1/models HTTP/1.1\r\nHost: gw\r\n"
                 b"Authorization: Bearer " + TOKEN + b"A" * 10_000 + b"\r\n\r\n",
                 id="oversized-header"),
])
async def test_malformed_request_gets_json_and_never_its_own_head_back(
        gateway: Gateway, head: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reply = await _raw(gateway, head)
    status_line, _, rest = reply.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status_line.split(b" ")[1].startswith(b"4"), reply[:300]
    assert b"content-type: application/json" in headers.lower(), reply[:300]
    error = orjson.loads(body)["error"]
    assert error["code"] == "malformed_request"
    assert error["type"] == "invalid_request_error"
    assert TOKEN not in reply
    assert TOKEN[:12].decode() not in "\n".join(r.getMessage() for r in caplog.records)
    # The gateway still serves afterwards.
    ok = await _raw(gateway, b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")
