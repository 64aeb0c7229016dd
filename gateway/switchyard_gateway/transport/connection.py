"""One keep-alive connection to an upstream origin: an asyncio protocol, one exchange
at a time (no pipelining). When TLS chose `h2` by ALPN it only holds the socket (reading
paused, early bytes kept) until the pool hands it to `http2.Multiplexed`."""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import cast

from switchyard_gateway.transport.events import Observer
from switchyard_gateway.transport.limits import Limits
from switchyard_gateway.transport.response import Response


class Connection(asyncio.Protocol):
    """A socket to one origin. `send` writes a request and returns its `Response`; when
    the response is complete and released, `on_idle` hands the connection back."""

    __slots__ = ("_early", "_fd", "_limits", "_loop", "_observer", "_on_closed", "_on_idle",
                 "_response", "_transport", "alpn_h2", "closed", "closing", "idle_since",
                 "made", "reused")

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: Limits, observer: Observer,
                 on_idle: Callable[[Connection], None],
                 on_closed: Callable[[Connection], None]) -> None:
        self._loop = loop
        self._limits = limits
        self._observer = observer
        self._fd = -1
        self._on_idle = on_idle
        self._on_closed = on_closed
        self._transport: asyncio.Transport | None = None
        self._response: Response | None = None
        self.made = False
        self.closing = False  # abort() called; connection_lost has not run yet
        self.closed = False
        self.idle_since = 0.0
        self.reused = False  # taken from the idle list: the server may have closed it
        self.alpn_h2 = False  # TLS chose HTTP/2: the socket is handed over, not used here
        self._early: list[bytes] = []

    def send(self, data: bytes) -> Response:
        """Write one whole request (head and body) and start reading its answer."""
        assert self._transport is not None and self._response is None
        response = self._response = Response(self, self._loop, self._limits, self._observer)
        self._transport.write(data)
        return response

    def exchange_done(self) -> None:
        """The response was read to its end: the connection is free again."""
        self._response = None
        if self.closing or self.closed:
            return
        self.idle_since = self._loop.time()
        self._on_idle(self)

    def abort(self) -> None:
        """Close at once, dropping anything unsent or unread."""
        if self._transport is not None and not (self.closing or self.closed):
            self.closing = True
            self._transport.abort()

    @property
    def usable(self) -> bool:
        """Open and not being closed: may carry another exchange."""
        return self.made and not (self.closing or self.closed)

    def expired(self) -> bool:
        """The idle socket is readable: the server closed it (EOF) or sent bytes nobody
        asked for, and the event loop has not seen it yet (httpcore's `has_expired`)."""
        if self._fd < 0:
            return False
        try:
            return bool(select.select((self._fd,), (), (), 0)[0])
        except (OSError, ValueError):
            return True

    def hand_over(self) -> tuple[asyncio.Transport, bytes]:
        """The socket and any bytes already read, for the HTTP/2 connection."""
        assert self._transport is not None
        early = b"".join(self._early)
        self._early.clear()
        return self._transport, early

    def pause_reading(self) -> None:
        """Flow control: stop reading until the response's reader catches up."""
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        """Flow control: read again."""
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else -1
        self.made = True
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self.alpn_h2 = True
            self._transport.pause_reading()  # the server's SETTINGS wait for the HTTP/2 side

    def data_received(self, data: bytes) -> None:
        response = self._response
        if self.alpn_h2:  # read before the pause took effect: kept for the HTTP/2 side
            self._early.append(data)
            return
        if response is None:  # nothing was asked: a misbehaving server
            self.abort()
            return
        response.feed(data)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._fd = -1
        response, self._response = self._response, None
        if response is not None:
            response.connection_lost()
        self._on_closed(self)
