"""Clients that hang up mid-request or mid-stream: each aborted request still leaves one
access line (status 499, outcome `client_closed`) and its metric, and its upstream call
is cancelled, the upstream seeing the hang-up. Before, 1,000 aborted streams made 1,000
upstream calls and 0 lines: an audit and billing gap. Played by a loopback upstream that
streams one content event and then stalls, and by the official openai SDK closing its
streams after the first chunk."""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web

from tests.integration.gateway.kit import endpoint, openai_target, running_gateway, wait_for
from tests.integration.gateway.test_routing import MESSAGES

ABORTS = 1_000
ENV = {"K": "sk-upstream-key-0123456789"}


class StallingUpstream:
    """An OpenAI-format upstream that answers slowly and counts callers who hang up."""

    def __init__(self) -> None:
        self.calls = 0
        self.hangups = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        # Handler cancellation: a caller that hangs up cancels the handler, so we see it.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"

    async def close(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.json()
        try:
            if not body.get("stream"):
                await asyncio.sleep(30)  # never answers in time
                return web.json_response({})
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for delta in ({"role": "assistant", "content": ""}, {"content": "Hel"}):
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0,
                         "model": "m", "choices": [{"index": 0, "delta": delta,
                                                    "finish_reason": None}]}
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await asyncio.sleep(30)  # then stalls
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self.hangups += 1
            raise


@pytest.fixture
async def upstream() -> AsyncIterator[StallingUpstream]:
    server = StallingUpstream()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [orjson.loads(r.getMessage()) for r in caplog.records
            if r.name == "switchyard.access"]


async def test_aborted_streams_are_logged_and_counted_as_client_closed(
        tmp_path: pathlib.Path, upstream: StallingUpstream,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchyard.access")
    doc = endpoint("chat", [openai_target("slow", upstream.url, "K", weight=100)])
    limit = asyncio.Semaphore(50)

    async def abort_one(client: openai.AsyncOpenAI) -> None:
        async with limit:
            stream = await client.chat.completions.create(model="chat", messages=MESSAGES,
                                                          stream=True)
            async for _ in stream:
                break  # the first chunk, then hang up
            await stream.close()

    async with (running_gateway(tmp_path / "cfg", [doc], ENV) as gw,
                openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x",
                                   max_retries=0) as client):
        async with asyncio.timeout(60):  # a hang guard; it takes a few seconds
            await asyncio.gather(*(abort_one(client) for _ in range(ABORTS)))
        await wait_for(lambda: len(_access_lines(caplog)) >= ABORTS
                       and upstream.hangups >= ABORTS, bound=20)
        metrics = gw.state.metrics.render().decode()
    lines = _access_lines(caplog)
    assert len(lines) == ABORTS
    assert {(line["status"], line["outcome"], line["stream"]) for line in lines} == {
        (499, "client_closed", True)}
    assert upstream.calls == ABORTS and upstream.hangups == ABORTS
    assert (f'switchyard_requests_total{{endpoint="default/chat",status="499",'
            f'target="slow"}} {float(ABORTS)}') in metrics


async def test_aborted_request_cancels_its_upstream_call(
        tmp_path: pathlib.Path, upstream: StallingUpstream,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchyard.access")
    doc = endpoint("chat", [openai_target("slow", upstream.url, "K", weight=100)])
    async with running_gateway(tmp_path / "cfg", [doc], ENV) as gw:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(TimeoutError):
                await http.post(gw.url + "/v1/chat/completions",
                                json={"model": "chat", "messages": MESSAGES},
                                timeout=aiohttp.ClientTimeout(total=0.5))
        await wait_for(lambda: bool(_access_lines(caplog)) and upstream.hangups == 1)
        metrics = gw.state.metrics.render().decode()
    [line] = _access_lines(caplog)
    assert (line["status"], line["outcome"]) == (499, "client_closed")
    assert line["attempts"] == [{"target": "slow", "outcome": "client_closed", "status": None,
                                 "ms": line["attempts"][0]["ms"], "sent": True}]  # type: ignore[index]
    assert ('switchyard_attempts_total{endpoint="default/chat",outcome="client_closed",'
            'target="slow"} 1.0') in metrics
