"""The reader's side of a response body, shared by both wire protocols.

`Response` (HTTP/1.1, `response.py`) and `Stream` (HTTP/2, `stream.py`) buffer what their
connection hands them and differ only in how taking a buffer gives flow back (resume the
socket; open the stream's window) and in what closing means (drop the connection; reset
the stream). Everything the caller reads — chunks as they come, the whole body under
`limits.body_bytes`, incremental inflation, failing on a limit — is here, once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NoReturn

from switchyard_gateway.transport.errors import LimitExceeded, TransportError
from switchyard_gateway.transport.inflate import Inflater
from switchyard_gateway.transport.limits import Limits

if TYPE_CHECKING:
    from switchyard_gateway.transport.events import Observer

#: `read()` of a compressed body lets the event loop run after this many decoded bytes.
_YIELD_EVERY = 1024 * 1024


class BufferedBody:
    """Reading a body its subclass buffers; subclasses give `_take` and `close`."""

    __slots__ = (
        "_budget", "_chunks", "_error", "_inflater", "_limits", "_loop", "_observer",
        "_received", "_waiter", "complete",
    )

    _loop: asyncio.AbstractEventLoop
    _limits: Limits
    _observer: Observer
    _chunks: list[bytes]
    _inflater: Inflater | None
    _error: BaseException | None
    _waiter: asyncio.Future[None] | None
    _received: int
    _budget: int
    complete: bool

    async def read_chunk(self) -> bytes:
        """Everything buffered so far (waiting for at least one byte), b"" at the end.

        Raises a `TransportError` (cut body, broken encoding, `LimitExceeded`).
        """
        if self._inflater is not None:
            return await self._read_inflated(self._inflater)
        while not self._chunks:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        return self._take()

    async def read(self) -> bytes:
        """The whole body, at most `limits.body_bytes` of it (else `LimitExceeded`)."""
        limit = self._limits.body_bytes
        self._budget = limit
        if self._received > limit and not self.complete:
            self._abandon(LimitExceeded("body", limit))
        parts: list[bytes] = []
        total = 0
        pause_at = _YIELD_EVERY
        while chunk := await self.read_chunk():
            total += len(chunk)
            if total > limit:
                parts.clear()
                self._abandon(LimitExceeded("body", limit))
            parts.append(chunk)
            if total >= pause_at:  # only a compressed body is read without waiting
                pause_at += _YIELD_EVERY
                await asyncio.sleep(0)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _read_inflated(self, inflater: Inflater) -> bytes:
        while True:
            try:
                if self._chunks or inflater.pending:
                    data = inflater.step(self._take() if self._chunks else b"")
                    if data:
                        return data
                    continue
                if self.complete:
                    return inflater.finish()
            except TransportError as exc:
                self._abandon(exc)
            if self._error is not None:
                raise self._error
            await self._wait()

    def _abandon(self, error: TransportError) -> NoReturn:
        """Fail on the reader's side: drop the buffer and the connection, raise `error`."""
        if isinstance(error, LimitExceeded) and self._error is None:
            self._observer.limit_exceeded(error.limit)
        self._error = error
        self._chunks.clear()
        self.close()
        raise error

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self) -> bytes:
        """Everything buffered, handing flow back to the sender."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop the exchange, whatever state it is in."""
        raise NotImplementedError
