"""The upstream client over HTTP/2 (TLS, ALPN h2) against the test kit's h2 server:
multiplexing, flow control with a slow reader, RST_STREAM and GOAWAY before and after the
first event, the capacity limit, and an origin that does not offer h2."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator

import h2.errors
import pytest

from switchyard_gateway.transport import (
    AddressRefused,
    BodyCutOff,
    ConnectionClosed,
    LimitExceeded,
    Limits,
    Overloaded,
    Pool,
    ProtocolError,
)
from switchyard_gateway.transport.http2 import STREAM_WINDOW
from switchyard_gateway.transport.response import Response
from switchyard_gateway.transport.stream import Stream
from switchyard_testing import certs
from switchyard_testing.h2server import H2Server, ServerStream
from tests.integration.transport.wire import BODY, Server, answer, fixed

EVENT = b'data: {"n":1}\n\n'
SSE = [("content-type", "text/event-stream")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.Pki:
    return certs.generate(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def servers(pki: certs.Pki) -> AsyncIterator[list[H2Server]]:
    started: list[H2Server] = []
    yield started
    for server in started:
        await server.stop()


async def _serve(servers: list[H2Server], pki: certs.Pki, handler, **kwargs) -> H2Server:  # type: ignore[no-untyped-def]
    server = await H2Server(handler, **kwargs).start(str(pki.server_cert), str(pki.server_key))
    servers.append(server)
    return server


def _pool(pki: certs.Pki, **kwargs) -> Pool:  # type: ignore[no-untyped-def]
    return Pool(ssl_context=ssl.create_default_context(cafile=str(pki.ca_cert)), **kwargs)


async def _held_until(release: asyncio.Event, stream: ServerStream) -> None:
    await stream.respond(200, SSE)
    await stream.send(EVENT)
    await release.wait()
    await stream.send(b"data: [DONE]\n\n", end=True)


async def test_streams_are_multiplexed_on_one_connection(servers, pki) -> None:
    release = asyncio.Event()
    server = await _serve(servers, pki, lambda s: _held_until(release, s))
    pool = _pool(pki)
    try:
        streams = await asyncio.gather(*(pool.request("POST", server.url(), {}, BODY)
                                         for _ in range(50)))
        assert all(isinstance(s, Stream) for s in streams)
        for s in streams:
            assert await s.read_chunk() == EVENT
        assert (server.connections, server.streams) == (1, 50)
        assert pool.open_connections() == 1
        release.set()
        for s in streams:
            assert await s.read() == b"data: [DONE]\n\n"
            s.release()
        again = await pool.request("POST", server.url(), {"Authorization": "Bearer k"}, BODY)
        assert again.status == 200 and server.connections == 1
        assert server.requests[-1].headers["authorization"] == "Bearer k"
        assert server.requests[-1].body == BODY
        again.close()
    finally:
        release.set()
        pool.close()


async def test_beyond_max_concurrent_streams_another_connection_opens(servers, pki) -> None:
    release = asyncio.Event()
    server = await _serve(servers, pki, lambda s: _held_until(release, s), max_streams=10)
    pool = _pool(pki)
    try:
        first = await pool.request("POST", server.url(), {}, BODY)  # learns the SETTINGS
        rest = await asyncio.gather(*(pool.request("POST", server.url(), {}, BODY)
                                      for _ in range(24)))
        assert server.streams == 25
        assert server.connections == 3  # 10 + 10 + 5
        for s in [first, *rest]:
            s.close()
    finally:
        release.set()
        pool.close()


async def test_overflow_beyond_connections_and_streams_fails_fast(servers, pki) -> None:
    release = asyncio.Event()
    server = await _serve(servers, pki, lambda s: _held_until(release, s), max_streams=2)
    pool = _pool(pki, limit_per_host=1, capacity_wait=0.1)
    try:
        held = [await pool.request("POST", server.url(), {}, BODY) for _ in range(2)]
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(Overloaded):
            await pool.request("POST", server.url(), {}, BODY)
        assert loop.time() - start < 1.0
        held[0].close()  # a slot frees: the next request gets it
        await asyncio.sleep(0.01)
        third = await pool.request("POST", server.url(), {}, BODY)
        assert server.connections == 1 and server.streams == 3
        third.close()
        held[1].close()
    finally:
        release.set()
        pool.close()


async def test_a_slow_reader_holds_the_server_to_one_window(servers, pki) -> None:
    big = b"x" * (8 * 1024 * 1024)
    sent: list[ServerStream] = []

    async def flood(stream: ServerStream) -> None:
        sent.append(stream)
        await stream.respond(200, [("content-type", "application/octet-stream")])
        await stream.send(big, end=True)
    server = await _serve(servers, pki, flood)
    pool = _pool(pki)
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        await asyncio.sleep(0.3)  # the reader does not read
        assert 0 < sent[0].sent <= STREAM_WINDOW
        assert len(await response.read()) == len(big)  # reading opens the window
        response.release()
    finally:
        pool.close()


async def test_a_request_body_beyond_the_server_window_is_sent_whole(servers, pki) -> None:
    async def echo_size(stream: ServerStream) -> None:
        await stream.respond(200)
        await stream.send(str(len(stream.body)).encode(), end=True)
    server = await _serve(servers, pki, echo_size)
    pool = _pool(pki)
    try:
        body = b"y" * (300 * 1024)  # the server's initial window is 64 KiB
        response = await pool.request("POST", server.url(), {}, body)
        assert await response.read() == str(len(body)).encode()
        response.release()
    finally:
        pool.close()


async def test_rst_stream_before_the_head_is_connection_closed(servers, pki) -> None:
    async def refuse(stream: ServerStream) -> None:
        stream.reset(h2.errors.ErrorCodes.INTERNAL_ERROR)
    server = await _serve(servers, pki, refuse)
    pool = _pool(pki)
    try:
        with pytest.raises(ConnectionClosed, match="reset the stream"):
            await pool.request("POST", server.url(), {}, BODY)
        assert server.streams == 1  # not retried: the server may have processed it
    finally:
        pool.close()


async def test_rst_stream_after_the_first_event_is_body_cut_off(servers, pki) -> None:
    async def cut(stream: ServerStream) -> None:
        await stream.respond(200, SSE)
        await stream.send(EVENT)
        await asyncio.sleep(0.02)
        stream.reset(h2.errors.ErrorCodes.INTERNAL_ERROR)
    server = await _serve(servers, pki, cut)
    pool = _pool(pki)
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        assert await response.read_chunk() == EVENT
        with pytest.raises(BodyCutOff):
            await response.read_chunk()
        response.close()
        ok = await pool.request("POST", server.url(), {}, BODY)  # the connection lives on
        assert server.connections == 1
        ok.close()
    finally:
        pool.close()


async def test_refused_stream_is_sent_again(servers, pki) -> None:
    async def refuse_first(stream: ServerStream) -> None:
        if server.streams == 1:
            stream.reset(h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        await stream.respond(200)
        await stream.send(b"{}", end=True)
    server = await _serve(servers, pki, refuse_first)
    pool = _pool(pki)
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        assert await response.read() == b"{}"
        assert server.streams == 2
        response.release()
    finally:
        pool.close()


async def test_goaway_before_the_head_retries_on_a_new_connection(servers, pki) -> None:
    async def leave_first(stream: ServerStream) -> None:
        if stream.connection_index == 1:
            stream.goaway(last_stream_id=0)  # nothing processed
            return
        await stream.respond(200)
        await stream.send(b'{"conn":2}', end=True)
    server = await _serve(servers, pki, leave_first)
    pool = _pool(pki)
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        assert await response.read() == b'{"conn":2}'
        assert server.connections == 2
        response.release()
    finally:
        pool.close()


async def test_goaway_after_the_first_event_lets_the_stream_finish(servers, pki) -> None:
    async def drain(stream: ServerStream) -> None:
        await stream.respond(200, SSE)
        await stream.send(EVENT)
        if stream.connection_index == 1:
            stream.goaway()  # this stream was processed: it completes
        await asyncio.sleep(0.02)
        await stream.send(b"data: [DONE]\n\n", end=True)
    server = await _serve(servers, pki, drain)
    pool = _pool(pki)
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        assert await response.read() == EVENT + b"data: [DONE]\n\n"
        response.release()
        after = await pool.request("POST", server.url(), {}, BODY)  # never on a GOAWAY'd one
        assert server.connections == 2
        after.close()
    finally:
        pool.close()


async def test_server_gone_mid_stream_is_body_cut_off(servers, pki) -> None:
    async def vanish(stream: ServerStream) -> None:
        await stream.respond(200, SSE)
        await stream.send(EVENT)
        await asyncio.sleep(0.02)
        assert stream._conn.transport is not None
        stream._conn.transport.abort()
    server = await _serve(servers, pki, vanish)
    pool = _pool(pki)
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        assert await response.read_chunk() == EVENT
        with pytest.raises(BodyCutOff):
            await response.read_chunk()
        response.close()
        await asyncio.sleep(0.01)
        assert pool.open_connections() == 0
    finally:
        pool.close()


async def test_body_limit_resets_only_that_stream(servers, pki) -> None:
    async def big(stream: ServerStream) -> None:
        await stream.respond(200)
        await stream.send(b"z" * 100_000, end=True)
    server = await _serve(servers, pki, big)
    pool = _pool(pki, limits=Limits(body_bytes=10_000))
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        with pytest.raises(LimitExceeded):
            await response.read()
        response.close()
        again = await pool.request("POST", server.url(), {}, BODY)
        assert again.status == 200 and server.connections == 1
        again.close()
    finally:
        pool.close()


async def test_origin_without_h2_is_served_over_http1(pki) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.server_cert, pki.server_key)
    tls.set_alpn_protocols(["http/1.1"])
    server = await Server(fixed(answer(b'{"h1":true}'))).start(tls=tls)
    pool = _pool(pki)
    try:
        for _ in range(2):
            response = await pool.request("POST", server.url(scheme="https"), {}, BODY)
            assert isinstance(response, Response)
            assert await response.read() == b'{"h1":true}'
            response.release()
        assert server.connections == 1
        assert not any(o.multiplexed for o in pool._origins.values())
    finally:
        pool.close()
        await server.stop()


async def test_address_policy_applies_to_new_http2_connections(servers, pki) -> None:
    release = asyncio.Event()
    server = await _serve(servers, pki, lambda s: _held_until(release, s), max_streams=1)
    answers = ["127.0.0.1", "169.254.169.254"]  # the name is re-pointed (DNS rebinding)

    async def resolver(host: str, port: int) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers.pop(0), port))]
    pool = _pool(pki, resolver=resolver)
    try:
        first = await pool.request("POST", server.url(), {}, BODY)
        with pytest.raises(AddressRefused):  # the second stream needs a second connection
            await pool.request("POST", server.url(), {}, BODY)
        assert server.connections == 1
        first.close()
    finally:
        release.set()
        pool.close()


async def test_a_head_over_the_header_limit_is_refused(servers, pki) -> None:
    async def huge_head(stream: ServerStream) -> None:
        await stream.respond(200, [("x-filler", "f" * 60_000)])
        await stream.send(b"{}", end=True)
    server = await _serve(servers, pki, huge_head)
    pool = _pool(pki, limits=Limits(header_bytes=16 * 1024))
    try:
        with pytest.raises(ProtocolError):  # LimitExceeded, or h2's own header-list cap
            response = await pool.request("POST", server.url(), {}, BODY)
            await response.read()
    finally:
        pool.close()


async def test_idle_http2_connections_are_closed_after_the_keepalive(servers, pki) -> None:
    async def quick(stream: ServerStream) -> None:
        await stream.respond(200)
        await stream.send(b"{}", end=True)
    server = await _serve(servers, pki, quick)
    pool = _pool(pki, keepalive_timeout=0.2)
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        assert await response.read() == b"{}"
        response.release()
        assert pool.open_connections() == 1
        await asyncio.sleep(0.6)
        assert pool.open_connections() == 0 and server.open == 0
    finally:
        pool.close()


async def test_reused_connection_closed_before_answering_is_retried(servers, pki) -> None:
    async def close_second(stream: ServerStream) -> None:
        if stream.connection_index == 1 and server.streams == 2:
            assert stream._conn.transport is not None
            stream._conn.transport.abort()  # no GOAWAY: the server just went
            return
        await stream.respond(200)
        await stream.send(f"conn {stream.connection_index}".encode(), end=True)
    server = await _serve(servers, pki, close_second)
    pool = _pool(pki)
    try:
        for expected in (b"conn 1", b"conn 2"):
            response = await pool.request("POST", server.url(), {}, BODY)
            assert await response.read() == expected
            response.release()
        assert server.streams == 3
    finally:
        pool.close()


async def test_the_stream_limit_per_origin_fails_fast(servers, pki) -> None:
    release = asyncio.Event()
    server = await _serve(servers, pki, lambda s: _held_until(release, s))
    pool = _pool(pki, streams_per_origin=3, capacity_wait=0.1)
    try:
        held = [await pool.request("POST", server.url(), {}, BODY) for _ in range(3)]
        with pytest.raises(Overloaded, match="all 3 streams allowed"):
            await pool.request("POST", server.url(), {}, BODY)
        held.pop().close()
        again = await pool.request("POST", server.url(), {}, BODY)  # the freed stream
        assert server.streams == 4 and server.connections == 1
        for response in [*held, again]:
            response.close()
        assert next(iter(pool._origins.values())).streams == 0
    finally:
        release.set()
        pool.close()
