"""The gateway to a provider that speaks HTTP/2 over TLS (the fake OpenAI behind the test
kit's h2 server, trusted through SSL_CERT_FILE), with the official openai SDK as the
client: answers and streams are relayed, concurrent streams share one upstream
connection, and an over-full origin falls back fast."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from switchyard_testing import certs
from switchyard_testing.fakes import FakeOpenAI, Fault
from switchyard_testing.h2server import H2Server, relay
from tests.integration.gateway.kit import endpoint, openai_target, running_gateway

KEYS = {"P_KEY": "sk-primary-aaaa1111", "F1_KEY": "sk-fallback1-bbbb2222"}
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def h2_fake(tmp_path: pathlib.Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[H2Server, FakeOpenAI]]:
    pki = certs.generate(tmp_path / "pki")
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_cert))  # the gateway trusts the kit's CA
    async with (await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as fake,
                aiohttp.ClientSession() as session):
        origin = fake.base_url.rsplit("/v1", 1)[0]
        server = await H2Server(relay(origin, session)).start(str(pki.server_cert),
                                                              str(pki.server_key))
        try:
            yield server, fake
        finally:
            await server.stop()


async def test_answers_and_streams_over_http2(tmp_path: pathlib.Path, h2_fake) -> None:
    server, _ = h2_fake
    doc = endpoint("chat", [openai_target("primary", server.base_url, "P_KEY", weight=100)])
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
        reply = await client.chat.completions.create(model="chat", messages=MESSAGES)
        assert reply.choices[0].message.content

        async def one_stream() -> str:
            stream = await client.chat.completions.create(model="chat", messages=MESSAGES,
                                                          stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream
                            if c.choices])
        texts = await asyncio.gather(*(one_stream() for _ in range(20)))
    assert all(texts)
    assert server.streams == 21
    assert server.connections == 1  # every request multiplexed on one connection


async def test_full_http2_origin_falls_back_fast(tmp_path: pathlib.Path, h2_fake) -> None:
    server, fake = h2_fake
    async with await FakeOpenAI.start(name="fb1", expected_key=KEYS["F1_KEY"]) as f1:
        doc = endpoint("chat", [openai_target("primary", server.base_url, "P_KEY", weight=100)],
                       [openai_target("fb1", f1.base_url, "F1_KEY")],
                       policy={"attemptTimeoutSeconds": 20})
        async with running_gateway(tmp_path / "cfg", [doc], KEYS,
                                   upstream_max_connections_per_origin=1,
                                   upstream_capacity_wait_seconds=0.1) as gw:
            client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
            server.max_streams = 1  # read by connections made from now on
            fake.script.push(Fault.HANG)
            held = asyncio.ensure_future(client.chat.completions.create(
                model="chat", messages=MESSAGES))
            loop = asyncio.get_running_loop()
            end = loop.time() + 5.0
            while not fake.requests:
                assert loop.time() < end
                await asyncio.sleep(0.01)
            start = loop.time()
            raw = await client.chat.completions.with_raw_response.create(
                model="chat", messages=MESSAGES)
            assert loop.time() - start < 2.0
            assert raw.headers["x-switchyard-target"] == "fb1"
            held.cancel()
