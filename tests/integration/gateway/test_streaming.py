"""Streaming: fallback until the first content event, error event after, disconnects."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from switchyard_testing.fakes import Behaviour, FakeOpenAI, Fault
from tests.integration.gateway.kit import (
    Gateway,
    endpoint,
    openai_target,
    running_gateway,
    wait_for,
)

KEYS = {"P_KEY": "sk-stream-primary-9999", "F_KEY": "sk-stream-fallback-8888"}
BODY = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI]]:
    async with (
        await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as p,
        await FakeOpenAI.start(name="fb", expected_key=KEYS["F_KEY"]) as f,
    ):
        yield p, f


@pytest.fixture
async def gateway(tmp_path: pathlib.Path,
                  fakes: tuple[FakeOpenAI, FakeOpenAI]) -> AsyncIterator[Gateway]:
    p, f = fakes
    doc = endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)],
                   [openai_target("fb", f.base_url, "F_KEY")],
                   # Fallback conduct only here: same-target retries are tests/conformance's.
                   policy={"retry": {"maxRetries": 0}})
    async with running_gateway(tmp_path / "cfg", [doc], KEYS) as gw:
        yield gw


async def _stream(gw: Gateway) -> tuple[aiohttp.ClientResponse, list[bytes]]:
    async with aiohttp.ClientSession() as http, http.post(
            gw.url + "/v1/chat/completions", json=BODY) as resp:
        raw = await resp.read()
    frames = [f for f in raw.split(b"\n\n") if f]
    return resp, frames


def _text(frames: list[bytes]) -> str:
    out = []
    for frame in frames:
        data = frame.removeprefix(b"data: ")
        if data == b"[DONE]":
            continue
        chunk = orjson.loads(data)
        for choice in chunk.get("choices", []):
            out.append(choice.get("delta", {}).get("content") or "")
    return "".join(out)


@pytest.mark.parametrize("fault", [Fault.IN_BAND_ERROR, Fault.RESET_STREAM, Fault.MALFORMED,
                                   Fault.UNAVAILABLE])
async def test_failure_before_content_falls_back(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI], fault: Fault) -> None:
    p, f = fakes
    p.script.push(Behaviour(fault, after_frames=1))
    resp, frames = await _stream(gateway)
    assert resp.status == 200
    assert resp.headers["x-switchyard-target"] == "fb"
    assert resp.headers["x-switchyard-attempts"] == "2"
    assert _text(frames) == "Hello from fb (fb)."
    assert frames[-1] == b"data: [DONE]"
    assert (len(p.requests), len(f.requests)) == (1, 1)


@pytest.mark.parametrize("fault", [Fault.RESET_STREAM, Fault.CUT_STREAM, Fault.IN_BAND_ERROR])
async def test_failure_after_content_ends_with_an_error_event(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI], fault: Fault) -> None:
    p, f = fakes
    # Spread the frames over separate reads, so the content is relayed before the fault
    # arrives (a fault in the same read as the content, before any of it was sent, still
    # falls back, which is also correct).
    p.chunk_delay = 0.05
    p.script.push(Behaviour(fault, after_frames=3))
    resp, frames = await _stream(gateway)
    assert resp.status == 200
    assert resp.headers["x-switchyard-target"] == "primary"
    assert b"data: [DONE]" not in frames
    last = orjson.loads(frames[-1].removeprefix(b"data: "))
    assert last["error"]["code"] == "stream_interrupted"
    assert _text(frames[:-1])  # some content did reach the caller
    assert len(f.requests) == 0


class Hanging:
    """An OpenAI-compatible upstream that sends some content, then waits forever.

    It records whether its handler was cancelled, which happens only when the gateway
    drops the upstream connection.
    """

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handler(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"},
                              "finish_reason": None}]}
        await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return resp

    async def __aenter__(self) -> Hanging:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handler)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_client_disconnect_cancels_the_upstream(tmp_path: pathlib.Path) -> None:
    async with Hanging() as upstream:
        doc = endpoint("chat", [openai_target("slow", upstream.url, None, weight=100,
                                              provider="openai-compatible")])
        async with running_gateway(tmp_path / "cfg", [doc], {}) as gw:
            gauge = gw.state.metrics.active_streams.labels("default/chat")
            async with aiohttp.ClientSession() as http:
                resp = await http.post(gw.url + "/v1/chat/completions", json=BODY)
                first = await resp.content.readany()
                assert b"Hel" in first
                assert gauge._value.get() == 1
                resp.close()  # the caller goes away mid-stream
            await asyncio.wait_for(upstream.cancelled.wait(), 10)
            await wait_for(lambda: gauge._value.get() == 0)
