"""The lean upstream client against real sockets: framing, keep-alive, failures, TLS.

Each test runs a small asyncio server on loopback that answers with exact bytes (what a
misbehaving provider or proxy really sends), so every branch of the parser and the pool
is driven by the wire, not by mocks.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from switchyard_gateway.transport import (
    BodyCutOff,
    ConnectError,
    ConnectionClosed,
    InvalidRequest,
    Pool,
    ProtocolError,
)
from switchyard_testing import certs
from tests.integration.transport.wire import BODY, Handler, Server, answer, fixed


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
async def pool() -> AsyncIterator[Pool]:
    pool = Pool()
    yield pool
    pool.close()


async def fetch(pool: Pool, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    response = await pool.request("POST", url, headers or {}, BODY)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def test_request_line_host_and_headers_as_sent(serve, pool: Pool) -> None:
    server = await serve(fixed(answer(b"{}")))
    await fetch(pool, server.url("/v1/chat/completions?api-version=2024-10-21"),
                {"Authorization": "Bearer sk-test", "x-request-id": "r-1"})
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions?api-version=2024-10-21 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"Authorization: Bearer sk-test" in lines
    assert b"x-request-id: r-1" in lines
    assert f"Content-Length: {len(BODY)}".encode() in lines
    assert body == BODY


async def test_keep_alive_reuses_one_connection(serve, pool: Pool) -> None:
    server = await serve(fixed(answer(b'{"n":1}')))
    for _ in range(5):
        assert await fetch(pool, server.url()) == (200, b'{"n":1}')
    assert server.connections == 1
    assert pool.idle_connections() == 1


async def test_concurrent_requests_open_their_own_connections(serve, pool: Pool) -> None:
    async def slow(request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)
        writer.write(answer(b"{}"))
    server = await serve(slow)
    results = await asyncio.gather(*(fetch(pool, server.url()) for _ in range(4)))
    assert results == [(200, b"{}")] * 4
    assert server.connections == 4
    assert pool.idle_connections() == 4


async def test_limit_per_host_queues_requests(serve) -> None:
    async def slow(request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.02)
        writer.write(answer(b"{}"))
    server = await serve(slow)
    pool = Pool(limit_per_host=1)
    try:
        results = await asyncio.gather(*(fetch(pool, server.url()) for _ in range(3)))
    finally:
        pool.close()
    assert results == [(200, b"{}")] * 3
    assert server.connections == 1


async def test_chunked_body_split_across_packets(serve, pool: Pool) -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b"5\r\nhel", b"lo\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"):
            await writer.drain()
            await asyncio.sleep(0.005)
            writer.write(part)
    server = await serve(chunked)
    assert await fetch(pool, server.url()) == (200, b"hello world")
    assert await fetch(pool, server.url()) == (200, b"hello world")
    assert server.connections == 1  # chunked framing keeps the connection reusable


async def test_read_chunk_hands_over_data_as_it_arrives(serve, pool: Pool) -> None:
    gate = asyncio.Event()

    async def stream(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"d\r\ndata: first\n\n\r\n")
        await writer.drain()
        await gate.wait()
        writer.write(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
    server = await serve(stream)
    response = await pool.request("POST", server.url(), {}, BODY)
    assert await response.read_chunk() == b"data: first\n\n"
    assert not response.has_data
    gate.set()
    assert await response.read_chunk() == b"data: second\n\n"
    assert await response.read_chunk() == b""
    response.release()
    assert pool.idle_connections() == 1


async def test_body_delimited_by_close(serve, pool: Pool) -> None:
    server = await serve(fixed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
                               close=True))
    assert await fetch(pool, server.url()) == (200, b"until the end")
    assert pool.idle_connections() == 0


async def test_connection_close_answer_is_not_reused(serve, pool: Pool) -> None:
    server = await serve(fixed(answer(b"{}", b"Connection: close"), close=True))
    for _ in range(2):
        assert await fetch(pool, server.url()) == (200, b"{}")
    assert server.connections == 2


async def test_connection_closed_by_server_while_idle_is_not_reused(serve, pool: Pool) -> None:
    server = await serve(fixed(answer(b"{}"), close=True))  # closes without saying so
    assert await fetch(pool, server.url()) == (200, b"{}")
    await server.closed.wait()
    await asyncio.sleep(0.01)  # let the client see the FIN
    assert await fetch(pool, server.url()) == (200, b"{}")
    assert server.connections == 2


async def test_idle_connection_past_keepalive_is_replaced(serve) -> None:
    server = await serve(fixed(answer(b"{}")))
    pool = Pool(keepalive_timeout=0.05)
    try:
        await fetch(pool, server.url())
        await asyncio.sleep(0.1)
        await fetch(pool, server.url())
    finally:
        pool.close()
    assert server.connections == 2


async def test_gzip_body_is_decoded(serve, pool: Pool) -> None:
    packed = gzip.compress(b'{"ok":true}')
    server = await serve(fixed(answer(packed, b"Content-Encoding: gzip")))
    assert await fetch(pool, server.url()) == (200, b'{"ok":true}')
    assert b"Accept-Encoding: gzip, deflate" in server.requests[0]


async def test_unknown_content_encoding_is_a_protocol_error_without_echo(
        serve, pool: Pool) -> None:
    # the value is upstream text (a proxy echoing the request's key there reached callers)
    server = await serve(fixed(answer(b"xx", b"Content-Encoding: sk-echoed-key-0123456789")))
    with pytest.raises(ProtocolError, match="unsupported content-encoding") as caught:
        await fetch(pool, server.url())
    assert "sk-echoed" not in str(caught.value)


async def test_error_status_keeps_headers_and_body(serve, pool: Pool) -> None:
    server = await serve(fixed(answer(b'{"error":{"type":"rate_limit"}}', b"Retry-After: 7",
                                      status=b"429 Too Many Requests")))
    response = await pool.request("POST", server.url(), {}, BODY)
    assert response.status == 429
    assert response.headers["retry-after"] == "7"
    assert await response.read() == b'{"error":{"type":"rate_limit"}}'
    response.release()


async def test_interim_100_continue_is_skipped(serve, pool: Pool) -> None:
    server = await serve(fixed(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"{}")))
    assert await fetch(pool, server.url()) == (200, b"{}")


async def test_close_before_answer_is_connection_closed(serve, pool: Pool) -> None:
    server = await serve(fixed(b"", close=True))
    with pytest.raises(ConnectionClosed):
        await fetch(pool, server.url())


async def test_close_mid_body_is_body_cut_off(serve, pool: Pool) -> None:
    server = await serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial",
                               close=True))
    with pytest.raises(BodyCutOff):
        await fetch(pool, server.url())
    assert pool.idle_connections() == 0


async def test_close_mid_chunked_stream_is_body_cut_off(serve, pool: Pool) -> None:
    server = await serve(fixed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"5\r\nhello\r\n", close=True))
    response = await pool.request("POST", server.url(), {}, BODY)
    assert await response.read_chunk() == b"hello"
    with pytest.raises(BodyCutOff):
        await response.read_chunk()
    response.close()


async def test_garbage_answer_is_a_protocol_error(serve, pool: Pool) -> None:
    server = await serve(fixed(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    with pytest.raises(ProtocolError, match="invalid HTTP response"):
        await fetch(pool, server.url())


async def test_refused_connection_names_host_and_port(pool: Pool) -> None:
    server = await Server(fixed(b"")).start()
    port = server.port
    await server.stop()
    await asyncio.sleep(0.01)
    with pytest.raises(ConnectError) as caught:
        await fetch(pool, f"http://127.0.0.1:{port}/v1")
    assert str(caught.value) == f"cannot connect to 127.0.0.1:{port}: ConnectionRefusedError"


async def test_cancel_while_waiting_drops_the_connection(serve, pool: Pool) -> None:
    gone = asyncio.Event()

    async def never(request: bytes, writer: asyncio.StreamWriter) -> None:
        assert server.reader is not None
        assert await server.reader.read() == b""  # until the client hangs up
        gone.set()
    server = await serve(never)
    task = asyncio.create_task(fetch(pool, server.url()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(gone.wait(), 2)  # the server saw the connection go
    assert pool.idle_connections() == 0


async def test_unread_response_released_is_closed_not_pooled(serve, pool: Pool) -> None:
    server = await serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"))
    response = await pool.request("POST", server.url(), {}, BODY)
    response.release()  # body incomplete: the connection cannot carry another request
    await asyncio.sleep(0.01)
    assert pool.idle_connections() == 0


async def test_slow_reader_pauses_the_socket_and_loses_nothing(serve, pool: Pool) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB

    async def big(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
        for i in range(0, len(payload), 65536):
            writer.write(payload[i:i + 65536])
            await writer.drain()
    server = await serve(big)
    response = await pool.request("POST", server.url(), {}, BODY)
    received = bytearray()
    while chunk := await response.read_chunk():
        assert len(chunk) <= 2 * 1024 * 1024
        received += chunk
        await asyncio.sleep(0.001)
    response.release()
    assert bytes(received) == payload


async def test_header_with_a_line_break_is_refused_without_echoing_it(serve,
                                                                      pool: Pool) -> None:
    server = await serve(fixed(answer(b"{}")))
    with pytest.raises(InvalidRequest) as caught:
        await fetch(pool, server.url(), {"Authorization": "Bearer sk-secret\r\nX-Evil: 1"})
    assert "sk-secret" not in str(caught.value)
    assert "Authorization" in str(caught.value)
    assert server.requests == []


async def test_non_http_url_is_refused(pool: Pool) -> None:
    with pytest.raises(InvalidRequest, match="http"):
        await fetch(pool, "ftp://127.0.0.1/x")


async def test_tls_with_a_trusted_ca(serve, tmp_path: Path) -> None:
    pki = certs.generate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.server_cert, pki.server_key)
    server = await Server(fixed(answer(b'{"tls":true}'))).start(tls=server_tls)
    trusting = ssl.create_default_context(cafile=str(pki.ca_cert))
    pool = Pool(ssl_context=trusting)
    untrusting = Pool()
    try:
        for _ in range(2):
            assert await fetch(pool, server.url(scheme="https")) == (200, b'{"tls":true}')
        assert server.connections == 1
        with pytest.raises(ConnectError, match="SSLCertVerificationError"):
            await fetch(untrusting, server.url(scheme="https"))
    finally:
        pool.close()
        untrusting.close()
        await server.stop()


async def test_host_name_with_several_addresses_connects(serve, pool: Pool) -> None:
    # "localhost" may resolve to ::1 first; the server listens on 127.0.0.1 only, so the
    # connection succeeds through Happy Eyeballs trying the next address.
    server = await serve(fixed(answer(b"{}")))
    assert await fetch(pool, f"http://localhost:{server.port}/v1") == (200, b"{}")
    assert f"Host: localhost:{server.port}".encode() in server.requests[0]


async def test_extra_answer_in_the_same_read_drops_the_connection(serve, pool: Pool) -> None:
    server = await serve(fixed(answer(b'{"first":1}') + answer(b'{"second":2}')))
    assert await fetch(pool, server.url()) == (200, b'{"first":1}')
    assert await fetch(pool, server.url()) == (200, b'{"first":1}')
    assert server.connections == 2  # the first connection was not trusted again


async def test_waiter_woken_then_cancelled_hands_its_turn_on() -> None:
    # At the per-host limit, a freed connection wakes one waiter; if that waiter is
    # cancelled before it runs (its deadline, its client gone), the next one must get the
    # turn instead of waiting forever.
    pool = Pool(limit_per_host=1)
    origin = pool._parse("http://127.0.0.1:9/v1").origin
    origin.open = 1  # one connection busy elsewhere
    first = asyncio.create_task(pool._acquire(origin))
    second = asyncio.create_task(pool._acquire(origin))
    await asyncio.sleep(0)
    freed = type("Freed", (), {"usable": True, "idle_since": 0.0, "reused": False,
                               "abort": lambda self: None, "expired": lambda self: False})()
    origin.idle.append(freed)  # type: ignore[arg-type]
    freed.idle_since = asyncio.get_running_loop().time()
    origin.wake_one()
    first.cancel()
    assert await asyncio.wait_for(second, 1) is freed
    with pytest.raises(asyncio.CancelledError):
        await first
