"""One response on a pooled connection: status, headers, and the body as it arrives.

A `Response` is also the httptools parser's callback object for its exchange, so the
parser writes straight into it. The body is kept as a list of chunks; the reader takes
everything buffered at once (`read_chunk`), which for an SSE stream is one or a few
events per wake-up. Past `HIGH_WATER` bytes not yet read, the socket is paused until
the reader catches up, so a slow caller cannot make the gateway buffer a whole response.

Limits (`limits.py`): the head is counted as it arrives and refused past `header_bytes`
(so is a header that never ends); `read()` refuses a body past `body_bytes`, counted on
the wire as it arrives; a compressed body is inflated on the reader's side, a step at a
time (`inflate.py`), up to `decompressed_bytes`. Crossing a limit drops what is buffered
and the connection.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from switchyard_gateway.transport.body import BufferedBody
from switchyard_gateway.transport.errors import (
    BodyCutOff,
    ConnectionClosed,
    LimitExceeded,
    ProtocolError,
    TransportError,
)
from switchyard_gateway.transport.inflate import Inflater, inflater_for
from switchyard_gateway.transport.limits import Limits

if TYPE_CHECKING:
    from switchyard_gateway.transport.connection import Connection
    from switchyard_gateway.transport.events import Observer

#: Unread body bytes above which the socket stops reading.
HIGH_WATER = 256 * 1024

#: Statuses that never have a body (RFC 9110 6.4.1).
_NO_BODY = frozenset({204, 304})
_UNLIMITED = sys.maxsize


class Response(BufferedBody):
    """The answer to one request. Read it whole (`read`) or as it comes (`read_chunk`);
    then `release()` it (connection back to the pool if the body was complete) or
    `close()` it (connection dropped)."""

    __slots__ = (
        "_conn", "_encoding", "_framed", "_headers", "_overhead", "_parser", "_paused",
        "_raw_headers", "_unread", "headers_done", "keep_alive", "status",
    )

    def __init__(self, conn: Connection, loop: asyncio.AbstractEventLoop,
                 limits: Limits, observer: Observer) -> None:
        self._conn: Connection | None = conn
        self._loop = loop
        self._limits = limits
        self._observer = observer
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: CIMultiDictProxy[str] | None = None
        self._encoding = b""
        self._framed = False  # Content-Length or chunked: the end is known without EOF
        self._inflater: Inflater | None = None
        self._chunks: list[bytes] = []
        self._unread = 0
        self._received = 0  # head bytes until the head is complete, then body bytes
        self._overhead = 0  # bytes fed since the last body bytes (framing, trailers)
        self._budget = _UNLIMITED  # body bytes allowed on the wire (set by `read`)
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.headers_done = False
        self.complete = False
        self.keep_alive = False

    # -- the reader's side ------------------------------------------------------------

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The response headers, case-insensitive (built on first use: the happy path
        never looks at them)."""
        if self._headers is None:
            self._headers = CIMultiDictProxy(CIMultiDict(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw_headers))
        return self._headers

    @property
    def has_data(self) -> bool:
        """True when `read_chunk` would return without waiting."""
        if self.complete or self._error is not None:
            return True
        # a compressed chunk may inflate to nothing yet: say no, so a deadline is armed
        return bool(self._chunks) and self._inflater is None

    @property
    def received_any(self) -> bool:
        """At least one byte of the answer has arrived (a stale connection sends none)."""
        return self._received > 0 or self.headers_done

    async def wait_headers(self) -> None:
        """Until the status line and headers are in; raises what broke the exchange."""
        while not self.headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    def release(self) -> None:
        """Done with it: a complete keep-alive exchange returns the connection to the
        pool, anything else closes it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self.complete and self.keep_alive and self._error is None:
            conn.exchange_done()
        else:
            conn.abort()

    def close(self) -> None:
        """Drop the connection, whatever state the exchange is in."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._unread = 0
        if self._paused:
            self._paused = False
            if self._conn is not None:
                self._conn.resume_reading()
        return data


    # -- the connection's side -----------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the socket, into the parser."""
        if self.complete:  # bytes after the end of the answer: the server misbehaves
            self.keep_alive = False
            if self._conn is not None:
                self._conn.abort()
            return
        if self._error is not None:
            return
        head = not self.headers_done
        if head:
            self._received += len(data)
        else:
            self._overhead += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(ProtocolError("the server switched protocols"))
        except httptools.HttpParserCallbackError as exc:
            # raised by one of our callbacks (an unknown content-encoding, a limit);
            # httptools keeps the original as the context
            cause = exc.__context__
            self.fail(cause if isinstance(cause, TransportError)
                      else ProtocolError(f"invalid HTTP response: {cause!r}"))
        except httptools.HttpParserError as exc:
            self.fail(ProtocolError(f"invalid HTTP response: {exc}"))
        if head:
            if not self.headers_done and self._received > self._limits.header_bytes:
                # a head that never ends: httptools would keep growing it
                self._chunks.clear()
                self.fail(LimitExceeded("headers", self._limits.header_bytes))
        elif self._overhead > self._limits.header_bytes:
            # bytes that are not body (chunk extensions, trailers) without end
            self._chunks.clear()
            self.fail(LimitExceeded("headers", self._limits.header_bytes))

    def fail(self, error: BaseException) -> None:
        """The exchange is broken; the reader gets `error` once the buffer is drained.

        After a complete answer (bytes the server should not have sent) the answer
        stands, but the connection is not trusted with another request.
        """
        if self.complete:
            self.keep_alive = False
            if self._conn is not None:
                self._conn.abort()
            return
        if self._error is None:
            if isinstance(error, LimitExceeded):
                self._observer.limit_exceeded(error.limit)
            self._error = error
            if self._conn is not None:
                self._conn.abort()
            self._wake()

    def connection_lost(self) -> None:
        """The socket closed: the end of an unframed body, else a cut exchange."""
        if self.complete or self._error is not None:
            return
        if self.headers_done and not self._framed:
            self._finish(keep_alive=False)  # body delimited by the close (RFC 9112 6.3)
        elif self.headers_done:
            self.fail(BodyCutOff("the server closed the connection mid-body"))
        else:
            self.fail(ConnectionClosed("the server closed the connection"))

    def _finish(self, keep_alive: bool) -> None:
        self.complete = True
        self.keep_alive = keep_alive
        self._wake()

    def _append(self, data: bytes) -> None:
        if self._error is not None:
            return
        self._overhead = 0
        self._received += len(data)
        if self._received > self._budget:
            self._chunks.clear()
            self.fail(LimitExceeded("body", self._budget))
            return
        self._chunks.append(data)
        self._unread += len(data)
        if self._unread > HIGH_WATER and not self._paused and self._conn is not None:
            self._paused = True
            self._conn.pause_reading()
        self._wake()

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request, in the same read
            raise ProtocolError("the server sent more than one answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:  # a trailer: not kept (bounded by the overhead count)
            return
        self._raw_headers.append((name, value))
        lower = name.lower()
        if lower == b"content-encoding":
            self._encoding = value
        elif lower == b"content-length" or (
                lower == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True

    def on_headers_complete(self) -> None:
        limit = self._limits.header_bytes
        # `_received` also counts body bytes of the same read: measure exactly only then
        if self._received > limit and _head_size(self._raw_headers) > limit:
            raise LimitExceeded("headers", limit)
        self.status = self._parser.get_status_code()
        if 100 <= self.status < 200:  # an interim answer: the real one follows
            self._raw_headers.clear()
            return
        if self.status in _NO_BODY:
            self._framed = True
        if self._encoding:
            self._inflater = inflater_for(self._encoding.decode("latin-1"),
                                          self._limits.decompressed_bytes)
        self._received = 0
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._append(body)

    def on_message_complete(self) -> None:
        if self.headers_done:
            self._finish(self._parser.should_keep_alive())


def _head_size(headers: list[tuple[bytes, bytes]]) -> int:
    return sum(len(name) + len(value) + 4 for name, value in headers)
