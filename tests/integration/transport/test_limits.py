"""The transport's limits against hostile loopback servers: each one is refused at its
limit with `LimitExceeded`, counted, and its connection dropped (never pooled).

The gateway-level view of the same attacks (RSS, /healthz, the fallback) is in
`test_hostile_upstreams.py`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from switchyard_gateway.transport import LimitExceeded, Limits, Pool
from switchyard_gateway.transport.inflate import STEP
from tests.integration.transport import hostile
from tests.integration.transport.wire import BODY, Handler, Server, answer, fixed

MIB = 1024 * 1024
SMALL = Limits(header_bytes=16 * 1024, body_bytes=1 * MIB, decompressed_bytes=2 * MIB)


class Counts:
    """A transport observer that remembers what it was told."""

    def __init__(self) -> None:
        self.limits: collections.Counter[str] = collections.Counter()
        self.refused = 0
        self.stale = 0

    def limit_exceeded(self, limit: str) -> None:
        self.limits[limit] += 1

    def address_refused(self) -> None:
        self.refused += 1

    def stale_retry(self) -> None:
        self.stale += 1


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = await Server(handler).start()
        servers.append(server)
        return server
    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def counts() -> Counts:
    return Counts()


@pytest.fixture
async def pool(counts: Counts) -> AsyncIterator[Pool]:
    pool = Pool(limits=SMALL, observer=counts)
    yield pool
    pool.close()


async def test_64_mib_of_headers_are_refused_at_the_header_limit(serve, pool: Pool,
                                                                 counts: Counts) -> None:
    sent = hostile.Sent()
    server = await serve(hostile.endless_headers(64 * MIB, sent))
    with pytest.raises(LimitExceeded, match="headers limit of 16384"):
        await pool.request("POST", server.url(), {}, BODY)
    await asyncio.wait_for(server.closed.wait(), 5)
    # dropped at the limit, not read to the end (the rest sat in socket buffers)
    assert sent.bytes < 16 * MIB
    assert counts.limits == {"headers": 1}
    assert pool.idle_connections() == 0


async def test_many_header_lines_in_one_read_are_refused(serve, pool: Pool) -> None:
    # complete, and all in one packet: caught when the head ends, not by the read count
    pad = b"".join(b"X-Pad-%d: %s" % (i, b"b" * 100) for i in range(200))
    server = await serve(fixed(answer(b"{}", *pad.split(b"X-Pad-")[1:])))
    with pytest.raises(LimitExceeded, match="headers"):
        await pool.request("POST", server.url(), {}, BODY)


async def test_endless_trailers_are_refused_at_the_header_limit(serve, pool: Pool,
                                                                counts: Counts) -> None:
    # a streamed (chunked) answer, then trailer lines that never end: not body, so the
    # body budget does not see them; the header limit bounds them
    trailer = b"X-Trailer: " + b"t" * 1000 + b"\r\n"

    async def handler(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(10_000):
                writer.write(trailer * 64)
                await writer.drain()
    server = await serve(handler)
    response = await pool.request("POST", server.url(), {}, BODY)
    with pytest.raises(LimitExceeded, match="headers limit"):
        async with asyncio.timeout(10):  # without the limit: no end, trailers pile up
            while await response.read_chunk():
                pass
    response.release()
    assert counts.limits == {"headers": 1}
    assert len(response.headers) == 1  # trailers are not kept


async def test_headers_under_the_limit_pass(serve, pool: Pool) -> None:
    server = await serve(fixed(answer(b"{}", b"X-Big: " + b"c" * 8000)))
    response = await pool.request("POST", server.url(), {}, BODY)
    assert response.headers["X-Big"] == "c" * 8000
    assert await response.read() == b"{}"
    response.release()


async def test_200_mb_body_is_refused_at_the_body_limit(serve, pool: Pool,
                                                        counts: Counts) -> None:
    sent = hostile.Sent()
    server = await serve(hostile.huge_body(200 * 1000 * 1000, sent))
    response = await pool.request("POST", server.url(), {}, BODY)
    with pytest.raises(LimitExceeded, match="body limit"):
        await response.read()
    response.release()
    await asyncio.wait_for(server.closed.wait(), 5)
    assert sent.bytes < 16 * MIB
    assert counts.limits == {"body": 1}
    assert pool.idle_connections() == 0


async def test_body_at_the_limit_passes(serve, pool: Pool) -> None:
    body = b"x" * SMALL.body_bytes
    server = await serve(fixed(answer(body)))
    response = await pool.request("POST", server.url(), {}, BODY)
    assert await response.read() == body
    response.release()
    assert pool.idle_connections() == 1


async def test_gzip_bomb_is_inflated_a_step_at_a_time_up_to_the_limit(
        serve, pool: Pool, counts: Counts) -> None:
    # a stream reader gets at most STEP decoded bytes per read; the total stops at the
    # decompressed limit
    server = await serve(hostile.gzip_bomb(300 * MIB, hostile.Sent()))
    response = await pool.request("POST", server.url(), {}, BODY)
    sizes = []
    with pytest.raises(LimitExceeded, match="decompressed limit"):
        while chunk := await response.read_chunk():
            sizes.append(len(chunk))
    response.release()
    assert max(sizes) <= STEP
    assert sum(sizes) <= SMALL.decompressed_bytes
    assert counts.limits == {"decompressed": 1}


async def test_gzip_bomb_read_whole_stops_at_the_body_limit(serve, pool: Pool,
                                                            counts: Counts) -> None:
    server = await serve(hostile.gzip_bomb(300 * MIB, hostile.Sent()))
    response = await pool.request("POST", server.url(), {}, BODY)
    with pytest.raises(LimitExceeded, match="body limit"):
        await response.read()
    response.release()
    assert counts.limits == {"body": 1}
    assert pool.idle_connections() == 0


async def test_gzip_body_split_across_packets_decodes(serve, pool: Pool) -> None:
    payload = b'{"text":"' + b"abc" * 200_000 + b'"}'
    packed = gzip.compress(payload)

    async def dribble(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: "
                     b"chunked\r\n\r\n")
        for i in range(0, len(packed), 700):
            piece = packed[i:i + 700]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
    server = await serve(dribble)
    response = await pool.request("POST", server.url(), {}, BODY)
    assert await response.read() == payload
    response.release()
    assert pool.idle_connections() == 1


async def test_corrupt_gzip_is_a_protocol_error(serve, pool: Pool) -> None:
    server = await serve(fixed(answer(b"\x1f\x8b\x08\x00garbage-garbage",
                                      b"Content-Encoding: gzip")))
    response = await pool.request("POST", server.url(), {}, BODY)
    with pytest.raises(Exception, match="does not decompress"):
        await response.read()
    response.release()
    assert pool.idle_connections() == 0
