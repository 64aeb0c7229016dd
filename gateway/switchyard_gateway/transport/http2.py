"""One HTTP/2 connection to an origin that chose `h2` by ALPN: many streams at once.

The h2 library is the protocol state machine (sans-IO); this asyncio protocol feeds it
the socket's bytes, writes what it produces, and dispatches its events to the `Stream`s.
The pool opens the connection (TLS, ALPN, address policy, Happy Eyeballs) and hands the
transport over (`start`); it then sends requests here while `available` says a stream
slot is free (the server's MAX_CONCURRENT_STREAMS, at most `MAX_STREAMS`).

Memory is bounded by flow control: each stream's window is `STREAM_WINDOW` and is handed
back only as the reader consumes the body, so a stalled reader stalls its own stream and
nothing else (the connection window is opened wide: the stream windows bound it).
Failures map to the HTTP/1.1 kinds: a reset or a close before the head is
`ConnectionClosed`, after it `BodyCutOff`; a stream the server did not process (above a
GOAWAY's last stream id, or REFUSED_STREAM) is `Unprocessed`, which the pool sends once
more on another connection; a protocol violation is `ProtocolError` for every stream and
drops the connection. Must not: buffer a body without bound, or reuse a connection after
GOAWAY.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from switchyard_gateway.transport.errors import InvalidRequest, ProtocolError
from switchyard_gateway.transport.events import Observer
from switchyard_gateway.transport.limits import Limits
from switchyard_gateway.transport.stream import Stream, Unprocessed

#: Bytes a server may send on one stream ahead of its reader: the same bound as the
#: HTTP/1.1 read buffer (`response.HIGH_WATER`), enough for 5 MB/s at 50 ms round trip.
STREAM_WINDOW = 256 * 1024
#: Streams per connection, whatever the server allows: a server's 2^31 would put every
#: request of a pod on one TCP connection (one congestion window, one lost packet stalls
#: all); 100 is the RFC's recommended minimum and what most servers advertise.
MAX_STREAMS = 256
_MAX_WINDOW = 2**31 - 1
#: Headers HTTP/2 forbids (RFC 9113 8.2.2) or that the client sets itself.
_DROPPED = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                      "upgrade", "host", "te", "content-length", "user-agent",
                      "accept-encoding"})
_FIXED = [("user-agent", "switchyard"), ("accept-encoding", "gzip, deflate")]


class Multiplexed(asyncio.Protocol):
    """A client HTTP/2 connection; `on_free(mux, ended)` runs when a stream slot frees
    (`ended` streams were let go, 0 when the server allowed more), `on_closed` once when
    the connection is gone."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: Limits, observer: Observer,
                 scheme: str, authority: str, on_free: Callable[[Multiplexed, int], None],
                 on_closed: Callable[[Multiplexed], None], max_streams: int = 100) -> None:
        self._loop = loop
        self._limits = limits
        self._observer = observer
        self._scheme = scheme
        self._authority = authority
        self._on_free = on_free
        self._on_closed = on_closed
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._h2 = h2.connection.H2Connection(config=config)
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, Stream] = {}
        self._window_waiters: list[asyncio.Future[None]] = []
        # until the server's SETTINGS say otherwise: what the origin's last connection said
        self._max_streams = min(max_streams, MAX_STREAMS)
        self.draining = False  # GOAWAY received or sent: no new streams
        self.closed = False
        self.carried = 0  # streams sent so far
        self.idle_since = loop.time()  # when the last stream ended

    def start(self, transport: asyncio.BaseTransport, early: bytes) -> None:
        """Take over the connection (after TLS chose h2) and send the preface."""
        self._transport = cast(asyncio.Transport, transport)
        transport.set_protocol(self)
        h2c = self._h2
        h2c.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self._limits.header_bytes,
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0,  # no pushes either
        })
        h2c.initiate_connection()
        h2c.increment_flow_control_window(_MAX_WINDOW - 65535)
        self._flush()
        if early:
            self.data_received(early)
        self._transport.resume_reading()

    @property
    def available(self) -> bool:
        """A new stream may be opened now."""
        return (not self.draining and not self.closed
                and len(self._streams) < self._max_streams)

    @property
    def max_streams(self) -> int:
        """Streams the server allows at once on this connection (capped at MAX_STREAMS)."""
        return self._max_streams

    @property
    def active(self) -> int:
        """Streams open now."""
        return len(self._streams)

    def send(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Stream:
        """Open a stream with this request. Raises `InvalidRequest` for a header HTTP/2
        cannot carry."""
        h2c = self._h2
        fields = [(":method", method), (":scheme", self._scheme),
                  (":authority", self._authority), (":path", path)]
        for name, value in headers.items():
            lower = name.lower()
            if lower not in _DROPPED:
                fields.append((lower, value))
        fields.extend(_FIXED)
        fields.append(("content-length", str(len(body))))
        stream_id = h2c.get_next_available_stream_id()
        if stream_id > _MAX_WINDOW - 2 * MAX_STREAMS:
            self.draining = True  # stream ids run out: the next request opens a connection
        try:
            h2c.send_headers(stream_id, fields, end_stream=not body)
        except h2.exceptions.ProtocolError as exc:
            raise InvalidRequest(f"the request cannot be sent over HTTP/2: {exc}") from None
        stream = Stream(self, stream_id, self._loop, self._limits, self._observer)
        self._streams[stream_id] = stream
        self.carried += 1
        if body:
            window = min(h2c.local_flow_control_window(stream_id), len(body))
            self._send_data(stream_id, body[:window], end=window == len(body))
            if window < len(body):
                stream.sender = self._loop.create_task(self._send_rest(stream, body[window:]))
        self._flush()
        return stream

    def consumed(self, stream_id: int, size: int) -> None:
        """The reader took `size` flow-controlled bytes: hand the window back."""
        if self.closed:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):  # the connection is over
            self._h2.acknowledge_received_data(size, stream_id)
        self._flush()

    def reset(self, stream_id: int) -> None:
        """Cancel a stream (our side gives up on it)."""
        if self.closed:
            return
        # StreamClosedError: over on the server's side; ProtocolError: the connection is
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self._flush()

    def stream_done(self, stream: Stream, reset: bool) -> None:
        """The reader let go of `stream`: free its slot."""
        if reset:
            self.reset(stream.stream_id)
        if self._streams.pop(stream.stream_id, None) is None:
            return
        if not self._streams:
            self.idle_since = self._loop.time()
            if self.draining:
                self.close()
        self._on_free(self, 1)

    def close(self) -> None:
        """Close the connection (its streams fail with `ConnectionClosed`)."""
        if self._transport is not None and not self.closed:
            self.draining = True
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection()
                self._flush()
            self._transport.close()

    def abort(self) -> None:
        """Close at once."""
        if self._transport is not None and not self.closed:
            self.draining = True
            self._transport.abort()

    # -- sending ------------------------------------------------------------------------

    def _send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        h2c = self._h2
        size = h2c.max_outbound_frame_size
        for start in range(0, len(data), size):
            piece = data[start:start + size]
            h2c.send_data(stream_id, piece, end_stream=end and start + size >= len(data))
        if not data and end:
            h2c.end_stream(stream_id)

    async def _send_rest(self, stream: Stream, rest: bytes) -> None:
        """The part of a request body beyond the server's window, as the window opens."""
        h2c = self._h2
        while rest:
            if self.closed or stream.stream_id not in self._streams:
                return
            window = h2c.local_flow_control_window(stream.stream_id)
            if window <= 0:
                waiter = self._loop.create_future()
                self._window_waiters.append(waiter)
                await waiter
                continue
            piece, rest = rest[:window], rest[window:]
            try:
                self._send_data(stream.stream_id, piece, end=not rest)
            except h2.exceptions.StreamClosedError:
                return  # the server answered (or reset) without reading all of it
            self._flush()

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self.closed:
            self._transport.write(data)

    # -- asyncio.Protocol ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(ProtocolError(f"invalid HTTP/2 from the server: {type(exc).__name__}"))
            self._flush()  # the GOAWAY h2 wrote
            self.abort()
            return
        for event in events:
            self._dispatch(event)
        self._flush()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None:
                stream.on_data(event.data or b"", event.flow_controlled_length or 0)
            elif event.flow_controlled_length:
                self._h2.acknowledge_received_data(event.flow_controlled_length,
                                                   event.stream_id or 0)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None:
                stream.on_headers(cast(list[tuple[bytes, bytes]], event.headers or []))
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None:
                stream.on_end()
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None:
                stream.on_reset(event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM)
        elif isinstance(event, h2.events.WindowUpdated):
            waiters, self._window_waiters = self._window_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            limit = self._h2.remote_settings.max_concurrent_streams
            self._max_streams = max(0, min(limit, MAX_STREAMS))
            self._on_free(self, 0)  # more room, maybe
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event.last_stream_id, event.error_code)

    def _goaway(self, last_stream_id: int | None, code: int | None) -> None:
        """GOAWAY: streams above `last_stream_id` were not processed (sent again
        elsewhere); after a graceful one (NO_ERROR) the others complete; no new stream
        goes here either way."""
        self.draining = True
        last = last_stream_id if last_stream_id is not None else 2**31
        graceful = code == h2.errors.ErrorCodes.NO_ERROR
        for stream_id, stream in list(self._streams.items()):
            if stream_id > last:
                stream.fail(Unprocessed("the server sent GOAWAY before processing the "
                                        "request"))
            elif not graceful:
                stream.connection_lost()
        if graceful and any(i <= last for i in self._streams):
            # h2 treats any GOAWAY as the end of the connection and would refuse the
            # frames of the streams the server still finishes (RFC 9113 6.8 lets it);
            # `draining` already keeps new streams off, so let h2 read on.
            self._h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        elif not self._streams or not graceful:
            self.abort()

    def _fail_all(self, error: BaseException) -> None:
        for stream in list(self._streams.values()):
            stream.fail(error)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.draining = True
        for stream in list(self._streams.values()):
            stream.connection_lost()
        for waiter in self._window_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._window_waiters.clear()
        self._on_closed(self)
