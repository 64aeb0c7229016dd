"""One failure classification for both paths (issue 15): every failure a provider or the
network can produce is run through the direct pool and through the proxied (aiohttp)
path, and must come out as the same `FailureKind` from `map_transport_error`, so
`policy.fallbackOn` and the 502/504 answer do not depend on whether HTTPS_PROXY is set.

On the proxied path the origin sits behind a forwarding proxy on loopback
(`proxy.ForwardingProxy`); the connect failures (refused, connect timeout) are the
proxy's own, since those are the ones the gateway itself meets on that path.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import inspect
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from switchyard_gateway.routing.attempts import map_transport_error
from switchyard_gateway.transport import Client, Limits, TransportError, proxied
from switchyard_gateway.transport.proxied import ProxiedResponse
from switchyard_schema import FailureKind
from switchyard_testing import certs
from tests.integration.transport import hostile
from tests.integration.transport.proxy import ForwardingProxy, reset
from tests.integration.transport.wire import BODY, Handler, Server, answer, fixed

LIMITS = Limits(header_bytes=16 * 1024, body_bytes=256 * 1024, decompressed_bytes=256 * 1024)
CONNECT_TIMEOUT = 0.3
DEADLINE = 1.5  # the attempt's deadline, as the router arms it

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
              "http_proxy", "https_proxy", "all_proxy", "no_proxy")


async def _reset_before_headers(request: bytes, writer: asyncio.StreamWriter) -> None:
    reset(writer)


async def _never_answers(request: bytes, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


Origin = Callable[[], Awaitable[tuple[str, str | None]]]  # -> (url, direct proxy override)


class Scenarios:
    """Builds each failure's origin; cleans up after the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.servers: list[Server] = []
        self.sockets: list[socket.socket] = []

    async def serve(self, handler: Handler, tls: ssl.SSLContext | None = None) -> Server:
        server = await Server(handler).start(tls)
        self.servers.append(server)
        return server

    def dead_port(self) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        sock.close()  # nothing listens there now: connections are refused
        return port

    def blackhole_port(self) -> int:
        """A listener whose accept queue is full: further SYNs are dropped (connect hangs)."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        port = int(sock.getsockname()[1])
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        self.sockets += [sock, filler]
        return port

    async def close(self) -> None:
        for server in self.servers:
            await server.stop()
        for sock in self.sockets:
            sock.close()


#: scenario -> the kind both paths must report
EXPECTED = {
    "refused": FailureKind.CONNECTION_ERROR,
    "reset_before_headers": FailureKind.CONNECTION_ERROR,
    "timeout_connecting": FailureKind.CONNECTION_ERROR,
    "timeout_reading": FailureKind.TIMEOUT,
    "cut_body": FailureKind.CONNECTION_ERROR,
    "garbage_answer": FailureKind.SERVER_ERROR,
    "oversized_headers": FailureKind.SERVER_ERROR,
    "oversized_body": FailureKind.SERVER_ERROR,
    "gzip_bomb": FailureKind.SERVER_ERROR,
    "tls_failure": FailureKind.CONNECTION_ERROR,
}


async def origin_for(scenario: str, s: Scenarios) -> tuple[str, int | None]:
    """(URL, port the proxied path must use as its proxy, or None for the forwarder)."""
    big = 1024 * 1024
    match scenario:
        case "refused":
            port = s.dead_port()
            return f"http://127.0.0.1:{port}/v1", port
        case "timeout_connecting":
            port = s.blackhole_port()
            return f"http://127.0.0.1:{port}/v1", port
        case "reset_before_headers":
            return (await s.serve(_reset_before_headers)).url(), None
        case "timeout_reading":
            return (await s.serve(_never_answers)).url(), None
        case "cut_body":
            server = await s.serve(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{",
                                         close=True))
            return server.url(), None
        case "garbage_answer":
            return (await s.serve(fixed(b"HELLO THERE\r\n\r\n", close=True))).url(), None
        case "oversized_headers":
            return (await s.serve(hostile.endless_headers(big, hostile.Sent()))).url(), None
        case "oversized_body":
            return (await s.serve(hostile.huge_body(big, hostile.Sent()))).url(), None
        case "gzip_bomb":
            return (await s.serve(hostile.gzip_bomb(8 * big, hostile.Sent()))).url(), None
        case "tls_failure":  # a certificate the gateway does not trust
            pki = certs.generate(s.tmp_path)
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(pki.server_cert, pki.server_key)
            return (await s.serve(fixed(answer(b"{}")), tls)).url(scheme="https"), None
    raise AssertionError(scenario)


async def failure_kind(url: str) -> FailureKind | None:
    client = Client(connect_timeout=CONNECT_TIMEOUT, limits=LIMITS)
    try:
        async with asyncio.timeout(DEADLINE):
            response = await client.request("POST", url, {}, BODY)
            try:
                await response.read()
            finally:
                response.release()
    except (TransportError, TimeoutError) as exc:
        return map_transport_error(exc, "t").kind
    finally:
        await client.close()
    return None


@pytest.fixture
async def scenarios(tmp_path: Path) -> AsyncIterator[Scenarios]:
    s = Scenarios(tmp_path)
    yield s
    await s.close()


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
async def test_both_paths_classify_each_failure_the_same(
        scenario: str, scenarios: Scenarios, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    url, proxy_port = await origin_for(scenario, scenarios)
    direct = await failure_kind(url)

    forwarder = await ForwardingProxy().start()
    try:
        proxy = f"http://127.0.0.1:{proxy_port}" if proxy_port else forwarder.url
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        proxied = await failure_kind(url)
    finally:
        await forwarder.stop()
    if proxy_port is None:
        assert forwarder.requests, "the proxied path did not go through the proxy"
    assert (direct, proxied) == (EXPECTED[scenario], EXPECTED[scenario])


def test_proxied_path_reads_no_private_aiohttp_attribute() -> None:
    # `content._buffer` was read to tell whether data was waiting: a private attribute
    # that any aiohttp release may rename
    text = inspect.getsource(proxied)
    assert re.findall(r"\b(?!self\b)\w+\._[a-z]\w*", text) == []


async def test_proxied_answer_within_limits_is_read_and_decoded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    origin = await Server(fixed(answer(gzip.compress(b'{"via":"proxy"}'),
                                       b"Content-Encoding: gzip"))).start()
    forwarder = await ForwardingProxy().start()
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", forwarder.url)
    client = Client(limits=LIMITS)
    try:
        response = await client.request("POST", origin.url(), {}, BODY)
        assert isinstance(response, ProxiedResponse)
        assert await response.read() == b'{"via":"proxy"}'
        response.release()
    finally:
        await client.close()
        await forwarder.stop()
        await origin.stop()
