"""Bounded, incremental decoding of a compressed response body (gzip, deflate).

Used by `response.py` and `proxied.py` on the reader's side: the socket hands over
compressed bytes (so flow control counts what is on the wire) and each `step` inflates at
most `STEP` bytes, keeping the rest of its input for the next step. A 305 KB gzip bomb
therefore never becomes 300 MB at once: it is inflated piece by piece until the
decompressed limit stops it. Must not do I/O.
"""

from __future__ import annotations

import zlib

from switchyard_gateway.transport.errors import LimitExceeded, ProtocolError

#: Decoded bytes produced per step (the most one `read_chunk` returns).
STEP = 256 * 1024


class Inflater:
    """One body's decoder, counting its output against `limit`."""

    __slots__ = ("_done", "_limit", "_total", "_z")

    def __init__(self, z: zlib._Decompress, limit: int) -> None:
        self._z = z
        self._limit = limit
        self._total = 0
        self._done = False

    @property
    def pending(self) -> bool:
        """Input is held back: `step(b"")` would produce more without new bytes."""
        return bool(self._z.unconsumed_tail)

    def step(self, raw: bytes) -> bytes:
        """Inflate what was held back plus `raw`, at most `STEP` bytes out (maybe b"").

        Raises `ProtocolError` (not a valid stream) or `LimitExceeded` (`decompressed`).
        """
        z = self._z
        tail = z.unconsumed_tail
        try:
            out = z.decompress(tail + raw if tail else raw, STEP)
        except zlib.error as exc:
            raise ProtocolError(f"the response body does not decompress: {exc}") from None
        return self._counted(out)

    def finish(self) -> bytes:
        """The last bytes once the compressed body is complete; b"" on later calls."""
        if self._done:
            return b""
        self._done = True
        try:
            out = self._z.flush()
        except zlib.error as exc:
            raise ProtocolError(f"the response body does not decompress: {exc}") from None
        return self._counted(out)

    def _counted(self, out: bytes) -> bytes:
        self._total += len(out)
        if self._total > self._limit:
            raise LimitExceeded("decompressed", self._limit)
        return out


def inflater_for(encoding: str, limit: int) -> Inflater | None:
    """The decoder for a `Content-Encoding` value (None for identity).

    Raises `ProtocolError` for an encoding the gateway does not ask for.
    """
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return Inflater(zlib.decompressobj(16 + zlib.MAX_WBITS), limit)
    if name == "deflate":
        return Inflater(zlib.decompressobj(zlib.MAX_WBITS), limit)
    # the value is not echoed: it is upstream text, and may carry whatever was sent
    raise ProtocolError("unsupported content-encoding (the gateway asks for gzip or deflate)")
