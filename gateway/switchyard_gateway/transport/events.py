"""What the transport reports to the gateway's metrics, as a small interface.

The transport must not import the metrics module (it sits below it in the layers), so
the pool and the attempt runner call an `Observer` that the app builds over its
Prometheus counters (`metrics.UpstreamEvents`). Calls are rare events only (a limit
crossed, an address refused, a stale connection retried, a request queued for a
connection), never one per request that finds a connection at once.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    """Receives the transport's rare events."""

    def limit_exceeded(self, limit: str) -> None:
        """An answer crossed `limit` (`headers`, `body`, `decompressed`, `sse_line`, ...)."""

    def address_refused(self) -> None:
        """A connection was refused by the address policy (`addresses.py`)."""

    def stale_retry(self) -> None:
        """A request was resent on a fresh connection: its reused one was closed before
        any byte of the answer came, or an HTTP/2 server did not process its stream."""

    def queued(self) -> None:
        """A request started waiting for a connection: its origin is at its limit."""

    def dequeued(self, seconds: float, refused: bool) -> None:
        """A queued request stopped waiting after `seconds`: it got a connection, or
        (`refused`) none became free within the capacity wait."""


class NullObserver:
    """Counts nothing (tests, tools)."""

    def limit_exceeded(self, limit: str) -> None:
        """Ignored."""

    def address_refused(self) -> None:
        """Ignored."""

    def stale_retry(self) -> None:
        """Ignored."""

    def queued(self) -> None:
        """Ignored."""

    def dequeued(self, seconds: float, refused: bool) -> None:
        """Ignored."""
