"""One request on a multiplexed HTTP/2 connection: the `UpstreamResponse` surface.

The HTTP/2 twin of `response.Response`, with the same reader's side (`read_chunk`,
`read`, `release`, `close`) and the same limits: the head is refused past
`header_bytes`, `read()` past `body_bytes`, a compressed body inflated a step at a time
(`inflate.py`) up to `decompressed_bytes`. Flow control replaces pausing the socket: the
bytes of a DATA frame are handed back to the server's window only when the reader takes
them (`Multiplexed.consumed`), so the server can never send more than one stream window
(`http2.STREAM_WINDOW`) ahead of the reader. Crossing a limit resets this stream only;
the connection and its other streams go on.

Called by `http2.Multiplexed` (the connection's side) and the router (the reader's side).
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from multidict import CIMultiDict, CIMultiDictProxy

from switchyard_gateway.transport.body import BufferedBody
from switchyard_gateway.transport.errors import (
    BodyCutOff,
    ConnectionClosed,
    LimitExceeded,
    TransportError,
)
from switchyard_gateway.transport.inflate import Inflater, inflater_for
from switchyard_gateway.transport.limits import Limits

if TYPE_CHECKING:
    from switchyard_gateway.transport.events import Observer
    from switchyard_gateway.transport.http2 import Multiplexed

_UNLIMITED = sys.maxsize


class Unprocessed(ConnectionClosed):
    """The server did not process the request (a GOAWAY below its stream id, or
    REFUSED_STREAM, RFC 9113 8.7): it may be sent again on another connection."""


class Stream(BufferedBody):
    """The answer to one request on an HTTP/2 connection. Read it, then `release()` it
    (a complete stream frees its slot) or `close()` it (the stream is reset)."""

    __slots__ = (
        "_conn", "_headers", "_raw_headers", "_unacked", "headers_done", "sender", "status",
        "stream_id",
    )

    def __init__(self, conn: Multiplexed, stream_id: int, loop: asyncio.AbstractEventLoop,
                 limits: Limits, observer: Observer) -> None:
        self._conn: Multiplexed | None = conn
        self.stream_id = stream_id
        self._loop = loop
        self._limits = limits
        self._observer = observer
        self.status = 0
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: CIMultiDictProxy[str] | None = None
        self._inflater: Inflater | None = None
        self._chunks: list[bytes] = []
        self._unacked = 0  # flow-controlled bytes received and not yet handed back
        self._received = 0
        self._budget = _UNLIMITED
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.sender: asyncio.Task[None] | None = None  # sends a body bigger than the window
        self.headers_done = False
        self.complete = False

    # -- the reader's side ------------------------------------------------------------

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The response headers, case-insensitive (pseudo-headers left out)."""
        if self._headers is None:
            self._headers = CIMultiDictProxy(CIMultiDict(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw_headers
                if not k.startswith(b":")))
        return self._headers

    @property
    def has_data(self) -> bool:
        """True when `read_chunk` would return without waiting."""
        if self.complete or self._error is not None:
            return True
        return bool(self._chunks) and self._inflater is None

    @property
    def received_any(self) -> bool:
        """A frame of the answer arrived (a stream on a connection closed under it
        before that was not answered)."""
        return self.headers_done or self._received > 0

    async def wait_headers(self) -> None:
        """Until the response headers are in; raises what broke the stream."""
        while not self.headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    def release(self) -> None:
        """Done with it: a complete stream frees its slot, anything else is reset."""
        self.close()

    def close(self) -> None:
        """Drop the stream (reset it unless it is complete) and free its slot."""
        conn, self._conn = self._conn, None
        if self.sender is not None:
            self.sender.cancel()
        if conn is not None:
            conn.stream_done(self, reset=not self.complete)

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        unacked, self._unacked = self._unacked, 0
        if unacked and self._conn is not None:
            self._conn.consumed(self.stream_id, unacked)  # the server may send this much more
        return data


    # -- the connection's side -----------------------------------------------------

    def on_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """The response head (h2 decoded it within MAX_HEADER_LIST_SIZE)."""
        size = sum(len(k) + len(v) + 4 for k, v in headers)
        if size > self._limits.header_bytes:
            self.fail(LimitExceeded("headers", self._limits.header_bytes), reset=True)
            return
        self._raw_headers = headers
        for name, value in headers:
            if name == b":status":
                self.status = int(value)
            elif name == b"content-encoding":
                try:
                    self._inflater = inflater_for(value.decode("latin-1"),
                                                  self._limits.decompressed_bytes)
                except TransportError as exc:
                    self.fail(exc, reset=True)
                    return
        self.headers_done = True
        self._wake()

    def on_data(self, data: bytes, flow_controlled: int) -> None:
        """Body bytes; their window is handed back when the reader takes them."""
        if self._error is not None:
            if self._conn is not None:
                self._conn.consumed(self.stream_id, flow_controlled)
            return
        self._unacked += flow_controlled
        self._received += len(data)
        if self._received > self._budget:
            self._chunks.clear()
            self.fail(LimitExceeded("body", self._budget), reset=True)
            return
        if data:
            self._chunks.append(data)
            self._wake()
        elif flow_controlled and self._conn is not None:  # padding only
            self._unacked -= flow_controlled
            self._conn.consumed(self.stream_id, flow_controlled)

    def on_end(self) -> None:
        """The server ended the stream: the body is complete."""
        if self._error is None:
            self.complete = True
            self._wake()

    def fail(self, error: BaseException, reset: bool = False) -> None:
        """The stream is broken; the reader gets `error` once the buffer is drained.
        `reset`: tell the server (our side refused it), else the server broke it."""
        if self.complete or self._error is not None:
            return
        if isinstance(error, LimitExceeded):
            self._observer.limit_exceeded(error.limit)
        self._error = error
        if reset and self._conn is not None:
            self._conn.reset(self.stream_id)
        self._wake()

    def on_reset(self, unprocessed: bool) -> None:
        """The server reset the stream (or refused it, `unprocessed`)."""
        if unprocessed and not self.headers_done:
            self.fail(Unprocessed("the server refused the stream before processing it"))
        elif self.headers_done:
            self.fail(BodyCutOff("the server reset the stream mid-body"))
        else:
            self.fail(ConnectionClosed("the server reset the stream"))

    def connection_lost(self) -> None:
        """The connection closed under the stream."""
        if self.headers_done:
            self.fail(BodyCutOff("the server closed the connection mid-body"))
        else:
            self.fail(ConnectionClosed("the server closed the connection"))
