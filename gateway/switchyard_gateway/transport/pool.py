"""Keep-alive connections per origin, and the one call the router makes: `request`.

Connections are opened with Happy Eyeballs over the host's resolved addresses, minus the
ones the address policy refuses (`addresses.py`); idle ones are kept `keepalive_timeout`
seconds, checked for a server-side close before reuse, and closed by a reaper timer when
they expire. An origin at its connection limit queues further requests for at most
`capacity_wait` seconds, then refuses them with `Overloaded` (nothing sent, so the
router falls back), never a silent wait for the whole attempt timeout. A request whose
reused connection closes before any byte of the answer arrives (the server closed it
just as it was taken) is sent once more on a fresh connection. Called by `client.py`;
never retries anything else.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import socket
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohappyeyeballs

from switchyard_gateway.transport import addresses
from switchyard_gateway.transport.connection import Connection
from switchyard_gateway.transport.errors import (
    AddressRefused,
    ConnectError,
    ConnectionClosed,
    InvalidRequest,
    Overloaded,
)
from switchyard_gateway.transport.events import NullObserver, Observer
from switchyard_gateway.transport.http2 import Multiplexed
from switchyard_gateway.transport.limits import (
    CAPACITY_WAIT_SECONDS,
    CONNECTIONS_PER_ORIGIN,
    KEEPALIVE_SECONDS,
    STREAMS_PER_ORIGIN,
    Limits,
)
from switchyard_gateway.transport.response import Response
from switchyard_gateway.transport.stream import Stream, Unprocessed

#: An idle connection older than this is looked at (one `select()`) before reuse: servers
#: close idle connections after seconds (uvicorn 5 s, nginx 75 s), so a connection reused
#: sooner is not worth the system call on the hot path; a late close is caught by the
#: stale-connection retry either way.
EXPIRY_CHECK_AFTER = 0.5
#: getaddrinfo's answer: (family, type, proto, canonname, sockaddr) tuples.
AddrInfos = Sequence[tuple[Any, ...]]
#: Resolves (host, port) to addresses; the event loop's getaddrinfo unless injected.
Resolver = Callable[[str, int], Awaitable[AddrInfos]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Sent on every request after the caller's headers.
_FIXED_HEADERS = "User-Agent: switchyard\r\nAccept-Encoding: gzip, deflate\r\n"
#: URLs parsed and remembered (targets x tasks; a config churn cannot grow it past this).
_URL_CACHE_SIZE = 4096
#: Seconds before the next address of a host is tried alongside (RFC 8305's default).
HAPPY_EYEBALLS_DELAY = 0.25
#: What TLS offers by ALPN: HTTP/2 first (many streams per connection), else HTTP/1.1.
ALPN = ["h2", "http/1.1"]

_T = TypeVar("_T")


@dataclasses.dataclass(slots=True)
class _Origin:
    """The connections to one scheme://host:port."""

    host: str
    port: int
    tls: bool
    idle: list[Connection] = dataclasses.field(default_factory=list)
    open: int = 0  # connecting, busy or idle
    #: requests waiting for a connection; True wakes one to try again, False refuses it
    waiters: collections.deque[asyncio.Future[bool]] = dataclasses.field(
        default_factory=collections.deque)
    #: a connection to it was made: over TLS, ALPN has said which protocol it speaks
    known: bool = False
    #: the origin chose HTTP/2 by ALPN: requests go to `muxes`, many per connection
    multiplexed: bool = False
    muxes: list[Multiplexed] = dataclasses.field(default_factory=list)
    #: an HTTP/2 connection being opened, and how many requests already count on it
    dial: asyncio.Task[Connection | Multiplexed] | None = None
    dial_claims: int = 0
    #: streams the server allows per connection (its last SETTINGS)
    slots: int = 100
    #: HTTP/2 streams open now, on all its connections
    streams: int = 0

    def wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    """A parsed URL: its origin and the start of the request head."""

    origin: _Origin
    head: str  # "POST /path HTTP/1.1\r\nHost: ...\r\n" without the method
    path: str  # "/path?query", HTTP/2's :path


class _Switched(Exception):
    """The new connection chose HTTP/2: the request goes over it instead."""

    def __init__(self, mux: Multiplexed) -> None:
        super().__init__()
        self.mux = mux


class Pool:
    """HTTP/1.1 keep-alive pool over asyncio, for request/response calls to providers.

    `limit_per_host` bounds the open connections per origin and `streams_per_origin` the
    HTTP/2 streams (further requests wait up to `capacity_wait` seconds for a free one,
    then get `Overloaded`); idle connections older
    than `keepalive_timeout` are not reused and are closed by the reaper. `resolver`
    replaces DNS (tests); `observer` counts refusals, queueing and stale-connection retries.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None,
                 connect_timeout: float = 10.0, keepalive_timeout: float = KEEPALIVE_SECONDS,
                 limit_per_host: int = CONNECTIONS_PER_ORIGIN,
                 capacity_wait: float = CAPACITY_WAIT_SECONDS,
                 streams_per_origin: int = STREAMS_PER_ORIGIN, limits: Limits | None = None,
                 resolver: Resolver | None = None, observer: Observer | None = None) -> None:
        self._ssl = ssl_context or ssl.create_default_context()
        self._ssl.set_alpn_protocols(ALPN)
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive_timeout
        self._limit = limit_per_host
        self._capacity_wait = capacity_wait
        self._stream_limit = streams_per_origin
        self._limits = limits or Limits()
        self._resolver = resolver
        self._observer: Observer = observer or NullObserver()
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._targets: dict[str, _Target] = {}
        self._reaper: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> Response | Stream:
        """Send one request; return once the response headers are in (a `Stream` when
        the origin speaks HTTP/2).

        Raises `Overloaded` (the origin's connections stayed busy for the capacity wait),
        `ConnectError` (`AddressRefused` included), `ConnectionClosed`,
        `ProtocolError` or `InvalidRequest`; a cancellation (deadline, client gone) drops
        the connection. A reused connection closed before any answer byte is replaced
        by a fresh one, once.
        """
        target = self._targets.get(url) or self._parse(url)
        if target.origin.multiplexed:
            return await self._request_h2(target, method, headers, body, None)
        data = _encode(method, target.head, headers, body)
        try:
            conn = await self._acquire(target.origin)
        except _Switched as switched:  # the first connection to the origin chose HTTP/2
            return await self._request_h2(target, method, headers, body, switched.mux)
        response = conn.send(data)
        try:
            await response.wait_headers()
        except ConnectionClosed:
            response.close()
            if not conn.reused or response.received_any:
                raise
            # The server closed the idle connection as we took it (keep-alive race): no
            # byte came back, so it did not answer; the request goes once more, fresh.
            self._observer.stale_retry()
            return await self._send_fresh(target.origin, data)
        except BaseException:
            response.close()
            raise
        return response

    async def _send_fresh(self, origin: _Origin, data: bytes) -> Response:
        conn = await self._connect(origin, asyncio.get_running_loop())
        if isinstance(conn, Multiplexed):  # the origin switched to HTTP/2 meanwhile
            raise ConnectionClosed("the server closed the connection")
        response = conn.send(data)
        try:
            await response.wait_headers()
        except BaseException:
            response.close()
            raise
        return response

    def close(self) -> None:
        """Close the idle connections and the HTTP/2 ones (their open streams fail);
        busy HTTP/1.1 ones close when their response does."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for origin in self._origins.values():
            for conn in origin.idle:
                conn.abort()
            origin.idle.clear()
            for mux in list(origin.muxes):
                mux.close()

    def idle_connections(self) -> int:
        """How many connections wait in the pool (for tests)."""
        return sum(len(o.idle) for o in self._origins.values())

    def open_connections(self) -> int:
        """Connections open (HTTP/1.1 and HTTP/2, connecting, busy or idle)."""
        return sum(o.open for o in self._origins.values())

    # -- HTTP/2 ---------------------------------------------------------------------------

    async def _request_h2(self, target: _Target, method: str, headers: Mapping[str, str],
                          body: bytes, mux: Multiplexed | None) -> Stream:
        """One request as a stream on an HTTP/2 connection; a stream the server did not
        process (GOAWAY, REFUSED_STREAM), or one whose reused connection closed before
        any frame of it came, is sent once more."""
        origin = target.origin
        loop = asyncio.get_running_loop()
        retried = False
        while True:
            if mux is None or not mux.available:
                mux = await self._acquire_stream(origin, loop)
            reused = mux.carried > 0
            stream = mux.send(method, target.path, headers, body)
            origin.streams += 1  # until `on_free` says it ended
            lost, mux = mux, None
            try:
                await stream.wait_headers()
            except ConnectionClosed as exc:
                stream.close()
                # not processed (GOAWAY, REFUSED_STREAM), or a reused connection that
                # closed before a frame of this stream came (as the stale HTTP/1.1 retry)
                unprocessed = isinstance(exc, Unprocessed) or (
                    reused and lost.closed and not stream.received_any)
                if retried or not unprocessed:
                    raise
                retried = True
                self._observer.stale_retry()
                continue
            except BaseException:
                stream.close()
                raise
            return stream

    async def _acquire_stream(self, origin: _Origin,
                              loop: asyncio.AbstractEventLoop) -> Multiplexed:
        mux = await self._grab_stream(origin, loop)
        if mux is not None:
            return mux
        return await self._queue(origin, loop, lambda: self._grab_stream(origin, loop),
                                 streams=origin.streams >= self._stream_limit)

    async def _grab_stream(self, origin: _Origin,
                           loop: asyncio.AbstractEventLoop) -> Multiplexed | None:
        """A connection with a free stream slot: an open one, one being opened that has
        slots nobody claimed yet, or a new one within the connection limit; else None
        (also when the origin is at its stream limit)."""
        while True:
            if origin.streams >= self._stream_limit:
                return None
            for mux in origin.muxes:
                if mux.available:
                    return mux
            dial = origin.dial
            if dial is not None and origin.dial_claims < origin.slots:
                origin.dial_claims += 1
            elif origin.open < self._limit:
                dial = origin.dial = loop.create_task(self._connect(origin, loop))
                origin.dial_claims = 1
                dial.add_done_callback(lambda task: _dialled(origin, task))
            else:
                return None
            conn = await asyncio.shield(dial)
            if isinstance(conn, Connection):  # the origin went back to HTTP/1.1
                origin.multiplexed = False
                conn.abort()
                raise ConnectionClosed("the server stopped offering HTTP/2")

    def _upgrade(self, origin: _Origin, conn: Connection,
                 loop: asyncio.AbstractEventLoop) -> Multiplexed:
        """TLS chose h2: the socket goes to an HTTP/2 connection."""
        def on_free(mux: Multiplexed, ended: int) -> None:
            origin.streams -= ended
            origin.slots = max(1, mux.max_streams)
            if mux.available:
                origin.wake_one()
            if not mux.active and self._reaper is None:
                self._schedule_reaper(loop)

        def on_closed(mux: Multiplexed) -> None:
            origin.open -= 1
            if mux in origin.muxes:
                origin.muxes.remove(mux)
            origin.wake_one()

        authority = f"[{origin.host}]" if ":" in origin.host else origin.host
        if origin.port != 443:
            authority += f":{origin.port}"
        mux = Multiplexed(loop, self._limits, self._observer, "https", authority, on_free,
                          on_closed, origin.slots)
        transport, early = conn.hand_over()
        origin.muxes.append(mux)
        origin.multiplexed = True
        mux.start(transport, early)
        return mux

    # -- connections ----------------------------------------------------------------------

    async def _acquire(self, origin: _Origin) -> Connection:
        loop = asyncio.get_running_loop()
        conn = self._take_idle(origin, loop.time())
        if conn is not None:
            return conn
        if origin.open < self._limit:
            if origin.tls and not origin.known:
                return await self._first_contact(origin, loop)
            return await self._dial(origin, loop)
        return await self._queue(origin, loop, lambda: self._grab(origin, loop))

    async def _first_contact(self, origin: _Origin,
                             loop: asyncio.AbstractEventLoop) -> Connection:
        """The first connection to a TLS origin is shared by the requests that arrive while
        it opens: if ALPN says h2 they all go over it, not over a connection each."""
        dial = origin.dial
        mine = dial is None
        if dial is None:
            dial = origin.dial = loop.create_task(self._connect(origin, loop))
            dial.add_done_callback(lambda task: _dialled(origin, task))
        conn = await asyncio.shield(dial)
        if isinstance(conn, Multiplexed):
            raise _Switched(conn)
        if mine:
            return conn
        return await self._acquire(origin)  # HTTP/1.1: a connection per request

    async def _grab(self, origin: _Origin, loop: asyncio.AbstractEventLoop) -> Connection | None:
        conn = self._take_idle(origin, loop.time())
        if conn is not None:
            return conn
        if origin.open < self._limit:
            return await self._dial(origin, loop)
        return None

    async def _dial(self, origin: _Origin, loop: asyncio.AbstractEventLoop) -> Connection:
        conn = await self._connect(origin, loop)
        if isinstance(conn, Multiplexed):
            raise _Switched(conn)
        return conn

    async def _queue(self, origin: _Origin, loop: asyncio.AbstractEventLoop,
                     grab: Callable[[], Awaitable[_T | None]], streams: bool = False) -> _T:
        """Wait for a free connection (or stream), until `capacity_wait` seconds after the
        call: the origin is at its limit. Off the hot path (only a full origin gets here)."""
        start = loop.time()
        deadline = start + self._capacity_wait
        self._observer.queued()
        refused = True
        try:
            while loop.time() < deadline:
                waiter: asyncio.Future[bool] = loop.create_future()
                origin.waiters.append(waiter)
                expiry = loop.call_at(deadline, _expire, origin.waiters, waiter)
                try:
                    woken = await waiter
                except BaseException:
                    refused = False  # cancelled (deadline, client gone), not refused
                    if waiter.done() and not waiter.cancelled() and waiter.result():
                        origin.wake_one()  # woken, then cancelled: hand the turn on
                    else:
                        waiter.cancel()
                    raise
                finally:
                    expiry.cancel()
                if not woken:
                    break
                refused = False
                got = await grab()
                if got is not None:
                    return got
                refused = True  # another request took the freed place first: wait on
        finally:
            self._observer.dequeued(loop.time() - start, refused)
        if streams:  # the stream limit, not the connections, is what was full
            raise Overloaded(origin.host, origin.port, self._stream_limit,
                             self._capacity_wait, "streams")
        raise Overloaded(origin.host, origin.port, self._limit, self._capacity_wait)

    def _take_idle(self, origin: _Origin, now: float) -> Connection | None:
        idle = origin.idle
        while idle:
            conn = idle.pop()  # the most recently used: least likely closed by the server
            idle_for = now - conn.idle_since
            if conn.usable and idle_for < self._keepalive and (
                    idle_for < EXPIRY_CHECK_AFTER or not conn.expired()):
                conn.reused = True
                return conn
            conn.abort()
        return None

    def _schedule_reaper(self, loop: asyncio.AbstractEventLoop,
                         when: float | None = None) -> None:
        if self._reaper is None and not self._closed:
            when = loop.time() + self._keepalive if when is None else when
            self._reaper = loop.call_at(when, self._reap, loop)

    def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close idle connections (HTTP/2 ones: without an open stream) past their
        keep-alive time; run again when the next one expires, while any is left."""
        self._reaper = None
        now = loop.time()
        oldest: float | None = None
        for origin in self._origins.values():
            for conn in [c for c in origin.idle if now - c.idle_since >= self._keepalive]:
                origin.idle.remove(conn)
                conn.abort()
            for conn in origin.idle:
                oldest = conn.idle_since if oldest is None else min(oldest, conn.idle_since)
            for mux in list(origin.muxes):  # HTTP/2 connections without a stream
                if mux.active or mux.closed:
                    continue
                if now - mux.idle_since >= self._keepalive:
                    mux.close()
                else:
                    oldest = mux.idle_since if oldest is None else min(oldest, mux.idle_since)
        if oldest is not None:
            self._schedule_reaper(loop, oldest + self._keepalive)

    async def _resolve(self, origin: _Origin,
                       loop: asyncio.AbstractEventLoop) -> list[tuple[Any, ...]]:
        """The host's addresses minus the refused ones; `AddressRefused` if none is left."""
        if self._resolver is not None:
            infos = await self._resolver(origin.host, origin.port)
        else:
            infos = await loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
        allowed = [info for info in infos if not addresses.refused(info[4][0])]
        if infos and not allowed:
            self._observer.address_refused()
            raise AddressRefused(origin.host, origin.port, infos[0][4][0])
        return allowed

    async def _connect(self, origin: _Origin,
                       loop: asyncio.AbstractEventLoop) -> Connection | Multiplexed:
        def on_idle(conn: Connection) -> None:
            if self._closed:
                conn.abort()
                return
            origin.idle.append(conn)
            if self._reaper is None:
                self._schedule_reaper(loop)
            origin.wake_one()

        def on_closed(conn: Connection) -> None:
            origin.open -= 1
            if conn in origin.idle:
                origin.idle.remove(conn)
            origin.wake_one()

        conn = Connection(loop, self._limits, self._observer, on_idle, on_closed)
        origin.open += 1
        try:
            async with asyncio.timeout(self._connect_timeout):
                # Happy Eyeballs (RFC 8305) over every address of the host, as aiohttp
                # does: a blackholed IPv6 route must not stall IPv4 for the whole timeout
                # (uvloop's create_connection tries addresses one after another).
                infos = await self._resolve(origin, loop)
                sock = await aiohappyeyeballs.start_connection(
                    infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1)
                try:
                    await loop.create_connection(
                        lambda: conn, sock=sock, ssl=self._ssl if origin.tls else None,
                        server_hostname=origin.host if origin.tls else None)
                except BaseException:
                    if not conn.made:
                        sock.close()
                    raise
        except BaseException as exc:
            if conn.made:
                conn.abort()  # connection_lost does the accounting
            else:
                origin.open -= 1
                origin.wake_one()
            if isinstance(exc, OSError | TimeoutError) and not isinstance(
                    exc, asyncio.CancelledError):
                raise ConnectError(origin.host, origin.port, exc) from exc
            raise
        origin.known = True
        if conn.alpn_h2:
            return self._upgrade(origin, conn, loop)
        return conn

    # -- URLs -----------------------------------------------------------------------------

    def _parse(self, url: str) -> _Target:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise InvalidRequest(f"cannot send to {url!r}: need an http(s) URL with a host")
        port = parts.port or _DEFAULT_PORTS[scheme]
        host = parts.hostname
        key = (scheme, host, port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(host, port, scheme == "https")
        host_header = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[scheme]:
            host_header += f":{port}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        target = _Target(origin, f" {path} HTTP/1.1\r\nHost: {host_header}\r\n", path)
        if len(self._targets) >= _URL_CACHE_SIZE:
            self._targets.clear()
        self._targets[url] = target
        return target


def _dialled(origin: _Origin, task: asyncio.Task[Connection | Multiplexed]) -> None:
    """An HTTP/2 dial is over: later requests dial anew (or use the new connection)."""
    if origin.dial is task:
        origin.dial = None
        origin.dial_claims = 0
    if not task.cancelled():
        task.exception()  # retrieved: every claimant that still waits has seen it


def _expire(waiters: collections.deque[asyncio.Future[bool]],
            waiter: asyncio.Future[bool]) -> None:
    """The capacity wait is over: refuse the waiter and forget it."""
    if not waiter.done():
        waiter.set_result(False)
        with contextlib.suppress(ValueError):
            waiters.remove(waiter)  # the oldest waiters expire first: found near the front


def _encode(method: str, head: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [method, head]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise InvalidRequest(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"{_FIXED_HEADERS}Content-Length: {len(body)}\r\n\r\n")
    # surrogateescape: a header aiohttp decoded from the caller's bytes goes out as sent
    return "".join(lines).encode("utf-8", "surrogateescape") + body

