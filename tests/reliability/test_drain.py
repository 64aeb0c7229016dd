"""SIGTERM during traffic: the Kubernetes shutdown order, with no accepted request lost.

A real `switchyard gateway` process serves streams and slow non-streaming requests from a
fake; SIGTERM arrives while they are in flight. Then: `/readyz` fails at once, requests are
still served for `--drain-seconds`, the listener closes (new connections refused) while an
in-flight stream is still running, every accepted request completes (streams with
`[DONE]`), and the process exits 0.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
import orjson
import pytest

from switchyard_testing.fakes import Behaviour, FakeOpenAI, Fault
from tests.integration.gateway.kit import endpoint, openai_target
from tests.reliability.procs import gateway_process, read_sse, status_of, until

KEY = "sk-drain-test-0a0b"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="drain", expected_key=KEY, chunk_delay=0.05) as f:
        yield f


async def _chat(http: aiohttp.ClientSession, url: str, model: str,
                stream: bool) -> tuple[int, bool]:
    """(status, complete): a JSON answer with content, or a stream ending in [DONE]."""
    body = {"model": model, "messages": MESSAGES, "stream": stream}
    async with http.post(url + "/v1/chat/completions", json=body) as resp:
        if stream:
            frames = await read_sse(resp)
            return resp.status, bool(frames) and frames[-1] == b"[DONE]"
        data = orjson.loads(await resp.read())
        return resp.status, bool(data["choices"][0]["message"]["content"])


async def test_sigterm_drains_in_kubernetes_order(tmp_path: pathlib.Path,
                                                  fake: FakeOpenAI) -> None:
    docs = [endpoint(m, [openai_target(m, fake.base_url, "P_KEY", weight=100)])
            for m in ("chat", "slow")]
    fake.script.push(*[Behaviour(Fault.HANG, hang_seconds=1.0)] * 8, model="chat")
    fake.script.push(Behaviour(Fault.SLOW, slow_delay=0.6), model="slow")
    extra = ["--drain-seconds", "1.5", "--shutdown-timeout", "30"]
    async with gateway_process(tmp_path, docs, {"P_KEY": KEY}, extra) as gw:
        pid = gw.process.pid
        assert pid is not None
        async with aiohttp.ClientSession() as http:
            inflight = [asyncio.create_task(_chat(http, gw.url, "chat", stream=i % 2 == 0))
                        for i in range(16)]
            long_stream = asyncio.create_task(_chat(http, gw.url, "slow", stream=True))
            await until(lambda: len(fake.requests) == 17)  # all accepted and upstream
            signalled = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            await until(lambda: _is(status_of(gw.url + "/readyz"), 503))
            async with aiohttp.ClientSession() as fresh:
                status, complete = await _chat(fresh, gw.url, "chat", stream=False)
            assert (status, complete) == (200, True)  # still served while draining
            await until(lambda: _is(status_of(gw.url + "/healthz"), 0))  # listener closed
            assert not long_stream.done()  # ...while a stream is still in flight
            results = await asyncio.gather(*inflight, long_stream)
        await until(lambda: gw.process.returncode() is not None)
        drained = time.monotonic() - signalled
    assert results == [(200, True)] * 17
    assert gw.process.returncode() == 0
    log = gw.log()
    assert "draining for 1.5s" in log and "gateway stopped" in log
    assert "Traceback" not in log
    print(f"drain: SIGTERM to exit {drained:.2f}s with 17 requests in flight")


async def _is(status: Coroutine[Any, Any, int], want: int) -> bool:
    return await status == want
