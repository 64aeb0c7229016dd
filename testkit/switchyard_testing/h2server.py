"""A small HTTP/2 server over TLS for tests, on asyncio and the h2 library.

Each request stream goes to an async `handler(ServerStream)` that answers it however a
test needs: headers, data as the client's flow-control window allows (`sent` counts
what went out), RST_STREAM, or GOAWAY for the whole connection. `relay(base_url)` is a
handler that forwards every stream to an HTTP/1.1 server (a fake provider) and streams
its answer back, so the fakes speak HTTP/2 over TLS as well. The server counts
connections and streams, so a test can see multiplexing. Loopback only; the TLS context
is the test kit's own CA (`certs.py`); ALPN offers `h2` (plus `http/1.1` when asked, to
check a client that prefers h2 chooses it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable

import aiohttp
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

Handler = Callable[["ServerStream"], Awaitable[None]]


class ServerStream:
    """One request the server received, and the means to answer it."""

    def __init__(self, conn: _ServerConnection, stream_id: int,
                 headers: list[tuple[bytes, bytes]]) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self.headers = {k.decode(): v.decode() for k, v in headers}
        self.body = b""
        self.sent = 0  # DATA bytes sent on this stream
        self.closed = asyncio.Event()  # reset by the client, or the connection is gone

    @property
    def connection_index(self) -> int:
        """Which connection (1, 2, ...) carried this stream."""
        return self._conn.index

    async def respond(self, status: int = 200, headers: list[tuple[str, str]] | None = None,
                      end: bool = False) -> None:
        fields = [(":status", str(status)), *(headers or [])]
        self._conn.h2.send_headers(self.stream_id, fields, end_stream=end)
        self._conn.flush()

    async def send(self, data: bytes, end: bool = False) -> None:
        """Send `data` as the client's window allows (waits while it is shut)."""
        conn = self._conn
        while data:
            if self.closed.is_set():
                raise ConnectionResetError("the stream was reset")
            window = min(conn.h2.local_flow_control_window(self.stream_id),
                         conn.h2.max_outbound_frame_size)
            if window <= 0:
                await conn.window_opened()
                continue
            piece, data = data[:window], data[window:]
            conn.h2.send_data(self.stream_id, piece, end_stream=end and not data)
            self.sent += len(piece)
            conn.flush()
            await asyncio.sleep(0)
        if end and not self.sent:
            conn.h2.end_stream(self.stream_id)
            conn.flush()

    def end(self) -> None:
        self._conn.h2.end_stream(self.stream_id)
        self._conn.flush()

    def reset(self, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        self._conn.h2.reset_stream(self.stream_id, code)
        self._conn.flush()

    def goaway(self, last_stream_id: int | None = None) -> None:
        """GOAWAY on this stream's connection (last processed id: `last_stream_id`, else
        this stream's)."""
        last = self.stream_id if last_stream_id is None else last_stream_id
        # written by hand: h2 would refuse to send anything after its own GOAWAY, and a
        # graceful server finishes the streams up to `last`
        frame = hyperframe.frame.GoAwayFrame(0)
        frame.last_stream_id = last
        frame.error_code = 0
        self._conn.flush()
        assert self._conn.transport is not None
        self._conn.transport.write(frame.serialize())


class _ServerConnection(asyncio.Protocol):
    def __init__(self, server: H2Server) -> None:
        self.server = server
        server.connections += 1
        self.index = server.connections
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, ServerStream] = {}
        self._window: list[asyncio.Future[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.open += 1
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_streams})
        self.h2.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def window_opened(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._window.append(waiter)
        await waiter

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                sid = event.stream_id or 0
                self.streams[sid] = ServerStream(self, sid, list(event.headers or []))
                self.server.streams += 1
            elif isinstance(event, h2.events.DataReceived):
                stream = self.streams.get(event.stream_id or 0)
                if stream is not None:
                    stream.body += event.data or b""
                self.h2.acknowledge_received_data(event.flow_controlled_length or 0,
                                                  event.stream_id or 0)
            elif isinstance(event, h2.events.StreamEnded):
                stream = self.streams.get(event.stream_id or 0)
                if stream is not None:
                    task = asyncio.ensure_future(self._handle(stream))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            elif isinstance(event, h2.events.StreamReset):
                stream = self.streams.get(event.stream_id or 0)
                if stream is not None:
                    stream.closed.set()
                self._wake()
            elif isinstance(event, h2.events.WindowUpdated):
                self._wake()
        self.flush()

    async def _handle(self, stream: ServerStream) -> None:
        self.server.requests.append(stream)
        with contextlib.suppress(ConnectionError, h2.exceptions.StreamClosedError,
                                 h2.exceptions.ProtocolError):
            await self.server.handler(stream)

    def _wake(self) -> None:
        waiters, self._window = self._window, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.open -= 1
        for stream in self.streams.values():
            stream.closed.set()
        self._wake()
        for task in self._tasks:
            task.cancel()


class H2Server:
    """Serves HTTP/2 over TLS on 127.0.0.1; `handler` answers each stream."""

    def __init__(self, handler: Handler, max_streams: int = 100) -> None:
        self.handler = handler
        self.max_streams = max_streams
        self.connections = 0
        self.open = 0
        self.streams = 0
        self.requests: list[ServerStream] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, cert: str, key: str, alpn: tuple[str, ...] = ("h2",),
                    port: int = 0) -> H2Server:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        tls.set_alpn_protocols(list(alpn))
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _ServerConnection(self), "127.0.0.1",
                                                port, ssl=tls, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


def relay(base: str, session: aiohttp.ClientSession) -> Handler:
    """A handler that forwards each stream to the HTTP/1.1 server at `base`
    (scheme://host:port) and streams the answer back as it comes."""
    async def handler(stream: ServerStream) -> None:
        headers = {k: v for k, v in stream.headers.items() if not k.startswith(":")}
        headers.pop("content-length", None)
        headers.pop("accept-encoding", None)
        url = base + stream.headers[":path"]
        async with session.request(stream.headers[":method"], url, headers=headers,
                                   data=stream.body) as answer:
            await stream.respond(answer.status, [
                (k.lower(), v) for k, v in answer.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                     "keep-alive", "content-encoding")])
            async for chunk in answer.content.iter_any():
                await stream.send(chunk)
            stream.end()
    return handler
