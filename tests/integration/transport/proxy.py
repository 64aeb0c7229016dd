"""A small forwarding proxy on loopback for the proxied-path tests.

A request in absolute form (`POST http://host:port/path HTTP/1.1`) is relayed to its
origin as sent and the origin's bytes relayed back until the origin closes; `CONNECT`
opens a tunnel (200, then bytes both ways). A reset from the origin is passed on as a
reset; an origin that cannot be reached closes the client's connection unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class ForwardingProxy:
    """HTTP forward proxy (absolute-form requests and CONNECT), one request per connection."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> ForwardingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            if method == b"CONNECT":
                host, _, port = target.rpartition(b":")
            else:
                authority = target.split(b"//", 1)[1].split(b"/", 1)[0]
                host, _, port = authority.rpartition(b":")
            try:
                up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
            except OSError:
                writer.close()
                return
            if method == b"CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_writer.write(head)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionResetError:
        reset(writer)
        return
    except ConnectionError:
        pass
    with contextlib.suppress(OSError):
        if writer.can_write_eof():
            writer.write_eof()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.fileno() >= 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
