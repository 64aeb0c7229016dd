"""Hostile upstreams for the limit tests: handlers for `wire.Server` that send what an
attacker behind a tenant's `baseUrl` would, as exact bytes.

Each writes until it has sent `total` bytes or the gateway drops the connection (which
is what a limit does), and records how many bytes it got out (`Sent.bytes`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import zlib

from tests.integration.transport.wire import Handler

PIECE = 64 * 1024


@dataclasses.dataclass
class Sent:
    """What a hostile handler got out before the connection was dropped."""

    bytes: int = 0
    dropped: bool = False


async def _pour(writer: asyncio.StreamWriter, head: bytes, piece: bytes, total: int,
                sent: Sent, tail: bytes = b"") -> None:
    """Write `head`, then `piece` until `total` bytes went out on this connection."""
    out = 0
    try:
        writer.write(head)
        out += len(head)
        while out < total:
            writer.write(piece)
            out += len(piece)
            await writer.drain()
        writer.write(tail)
        await writer.drain()
    except (ConnectionError, OSError):
        sent.dropped = True
        writer.close()
    finally:
        sent.bytes += out


def endless_headers(total: int, sent: Sent) -> Handler:
    """A status line, then header lines (1 KiB each) up to `total` bytes."""
    line = b"X-Pad: " + b"a" * (1024 - 9) + b"\r\n"
    piece = line * (PIECE // len(line))

    async def handler(request: bytes, writer: asyncio.StreamWriter) -> None:
        await _pour(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", piece,
                    total, sent, b"Content-Length: 2\r\n\r\n{}")
    return handler


def huge_body(total: int, sent: Sent) -> Handler:
    """A JSON body of `total` bytes (Content-Length framed)."""
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> None:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(total).encode() + b"\r\n\r\n")
        await _pour(writer, head, b" " * PIECE, total + len(head), sent)
    return handler


@functools.cache
def bomb(decoded: int) -> bytes:
    """`decoded` zero bytes, gzipped (300 MB -> ~300 KB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [packer.compress(zeros) for _ in range(decoded // len(zeros))]
    parts.append(packer.flush())
    return b"".join(parts)


def gzip_bomb(decoded: int, sent: Sent) -> Handler:
    """A gzip body that inflates to `decoded` bytes."""
    body = bomb(decoded)

    async def handler(request: bytes, writer: asyncio.StreamWriter) -> None:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: "
                b"gzip\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        await _pour(writer, head + body, b"", 0, sent)
    return handler


def endless_sse_line(total: int, sent: Sent) -> Handler:
    """An event stream whose first line never ends (`total` bytes of it)."""
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> None:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Connection: close\r\n\r\ndata: {\"id\":\"")
        await _pour(writer, head, b"a" * PIECE, total, sent)
    return handler
