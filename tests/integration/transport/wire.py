"""A loopback server that answers with exact bytes, for the transport tests.

Each connection is read one request at a time (head, then Content-Length bytes) and
`handler` writes whatever a misbehaving provider or proxy really sends.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]
BODY = b'{"model":"m"}'


class Server:
    """Reads one request at a time per connection and lets `handler` answer it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0  # connections not yet closed (by either side)
        self.requests: list[bytes] = []
        self.reader: asyncio.StreamReader | None = None  # the newest connection's
        self.closed = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/v1/chat/completions", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.reader = reader
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.handler(request, writer)
                if writer.is_closing():
                    return
        finally:
            self.open -= 1
            writer.close()
            self.closed.set()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


def answer(body: bytes, *extra: bytes, status: bytes = b"200 OK") -> bytes:
    headers = b"".join(h + b"\r\n" for h in extra)
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n" + headers + b"\r\n" + body)


def fixed(data: bytes, close: bool = False) -> Handler:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if close:
            writer.close()
    return handler
