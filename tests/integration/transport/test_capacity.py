"""The pool's capacity limits against a loopback upstream that holds its streams open:
past the per-origin connection limit a request waits at most the capacity wait, then
fails with `Overloaded` (nothing sent), counted by the observer; a connection freed in
time is handed to the oldest waiter.

The gateway-level view (the fallback serves, else 503 with Retry-After) is in
`tests/integration/gateway/test_capacity.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from switchyard_gateway.transport import Overloaded, Pool, Response
from tests.integration.transport.wire import BODY, Server, answer

#: A stream's head and first event; the rest never comes (until the test lets it).
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")
EVENT = b'data: {"n":1}\n\n'


class Counts:
    """A transport observer that remembers the queue events."""

    def __init__(self) -> None:
        self.entered = 0
        self.waits: list[tuple[float, bool]] = []

    def limit_exceeded(self, limit: str) -> None:
        pass

    def address_refused(self) -> None:
        pass

    def stale_retry(self) -> None:
        pass

    def queued(self) -> None:
        self.entered += 1

    def dequeued(self, seconds: float, refused: bool) -> None:
        self.waits.append((seconds, refused))


class Holding:
    """An upstream that sends a stream's first event and holds it until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.server = Server(self._handle)

    async def _handle(self, request: bytes, writer: asyncio.StreamWriter) -> None:
        chunk = f"{len(EVENT):x}\r\n".encode() + EVENT + b"\r\n"
        writer.write(HEAD + chunk)
        await writer.drain()
        await self.release.wait()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


@pytest.fixture
async def holding() -> AsyncIterator[Holding]:
    upstream = Holding()
    await upstream.server.start()
    yield upstream
    upstream.release.set()
    await upstream.server.stop()


async def _open(pool: Pool, url: str) -> Response:
    response = await pool.request("POST", url, {}, BODY)
    assert await response.read_chunk() == EVENT
    return response


async def test_overflow_beyond_the_connection_limit_fails_fast(holding: Holding) -> None:
    counts = Counts()
    pool = Pool(limit_per_host=3, capacity_wait=0.1, observer=counts)
    url = holding.server.url()
    try:
        held = [await _open(pool, url) for _ in range(3)]
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = await asyncio.gather(*(pool.request("POST", url, {}, BODY)
                                         for _ in range(5)), return_exceptions=True)
        waited = loop.time() - start
        assert all(isinstance(r, Overloaded) for r in results), results
        assert 0.1 <= waited < 1.0  # the capacity wait, not the attempt timeout
        assert "127.0.0.1" in str(results[0]) and "all 3 connections allowed" in str(results[0])
        assert holding.server.connections == 3  # nothing was sent for the refused ones
        assert len(holding.server.requests) == 3
        assert counts.entered == 5
        assert [refused for _, refused in counts.waits] == [True] * 5
        assert all(0.09 <= seconds < 1.0 for seconds, _ in counts.waits)
        for response in held:
            response.close()
    finally:
        pool.close()


async def test_zero_capacity_wait_refuses_at_once(holding: Holding) -> None:
    pool = Pool(limit_per_host=1, capacity_wait=0.0)
    try:
        held = await _open(pool, holding.server.url())
        with pytest.raises(Overloaded):
            async with asyncio.timeout(0.05):
                await pool.request("POST", holding.server.url(), {}, BODY)
        held.close()
    finally:
        pool.close()


async def test_a_connection_freed_within_the_wait_goes_to_the_waiter(holding: Holding) -> None:
    counts = Counts()
    pool = Pool(limit_per_host=1, capacity_wait=2.0, observer=counts)
    url = holding.server.url()
    try:
        held = await _open(pool, url)
        waiting = asyncio.ensure_future(pool.request("POST", url, {}, BODY))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        holding.release.set()  # the held stream ends: its connection goes back to the pool
        assert await held.read_chunk() == b""
        held.release()
        response = await asyncio.wait_for(waiting, 2.0)
        response.close()
        assert holding.server.connections == 1  # the freed connection was reused
        assert len(counts.waits) == 1 and counts.waits[0][1] is False
    finally:
        pool.close()


async def test_refused_and_cancelled_waiters_leave_no_trace(holding: Holding) -> None:
    pool = Pool(limit_per_host=1, capacity_wait=0.05)
    url = holding.server.url()
    try:
        held = await _open(pool, url)
        for _ in range(3):
            with pytest.raises(Overloaded):
                await pool.request("POST", url, {}, BODY)
        cancelled = asyncio.ensure_future(pool.request("POST", url, {}, BODY))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        origin = next(iter(pool._origins.values()))
        assert not [w for w in origin.waiters if not w.done()]
        assert len(origin.waiters) <= 1  # the cancelled one, skipped by wake_one
        held.close()
        await asyncio.sleep(0.01)
        assert origin.open == 0
    finally:
        pool.close()


async def test_short_requests_queue_within_the_wait(serve_quick: Server) -> None:
    pool = Pool(limit_per_host=2, capacity_wait=1.0)
    try:
        async def one() -> bytes:
            response = await pool.request("POST", serve_quick.url(), {}, BODY)
            try:
                return await response.read()
            finally:
                response.release()
        assert await asyncio.gather(*(one() for _ in range(10))) == [b"{}"] * 10
        assert serve_quick.connections == 2
    finally:
        pool.close()


@pytest.fixture
async def serve_quick() -> AsyncIterator[Server]:
    async def quick(request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.01)
        writer.write(answer(b"{}"))
    server = await Server(quick).start()
    yield server
    await server.stop()
