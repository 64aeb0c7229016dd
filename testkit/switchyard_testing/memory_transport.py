"""An in-memory `Transport` for unit tests: a handler function answers each request.

The twin of httpx's `MockTransport`: the router's fallback walk, cooldowns and stream
commits run for real (`Router`, `AttemptRunner`, the adapters), only the sockets are
replaced. The handler gets a `MemoryRequest` and returns a `MemoryResponse` (a whole
body, or `chunks` handed over one `read_chunk` at a time), or raises what the wire would
(a `TransportError`, `TimeoutError`). An exception among the `chunks` is raised when the
reader reaches it: a stream that breaks midway. Never used by the gateway itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from switchyard_gateway.transport import UpstreamResponse


@dataclasses.dataclass(frozen=True)
class MemoryRequest:
    """One request as the transport was asked to send it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, parsed."""
        return orjson.loads(self.body)


@dataclasses.dataclass
class MemoryResponse:
    """What the handler answers: `body` whole, or `chunks` (bytes or an exception each)."""

    status: int = 200
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    chunks: Sequence[bytes | BaseException] | None = None


Handler = Callable[[MemoryRequest], "MemoryResponse | Awaitable[MemoryResponse]"]


class _Response:
    """A `MemoryResponse` behind the `UpstreamResponse` surface."""

    def __init__(self, answer: MemoryResponse) -> None:
        self.status = answer.status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(answer.headers))
        pieces = answer.chunks if answer.chunks is not None else [answer.body]
        self._pieces = [p for p in pieces if not isinstance(p, bytes) or p]
        self.released = False
        self.closed = False

    @property
    def has_data(self) -> bool:
        return True

    async def read_chunk(self) -> bytes:
        await asyncio.sleep(0)  # a read yields to the loop, as a socket read may
        if not self._pieces:
            return b""
        piece = self._pieces.pop(0)
        if isinstance(piece, BaseException):
            raise piece
        return piece

    async def read(self) -> bytes:
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        self.released = True

    def close(self) -> None:
        self.closed = True


class MemoryTransport:
    """Answers every request with `handler`; remembers the requests and responses."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[MemoryRequest] = []
        self.responses: list[_Response] = []

    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> UpstreamResponse:
        """Call the handler; raises what it raises."""
        request = MemoryRequest(method, url, dict(headers), body)
        self.requests.append(request)
        answer = self._handler(request)
        if not isinstance(answer, MemoryResponse):
            answer = await answer
        response = _Response(answer)
        self.responses.append(response)
        return response

    async def close(self) -> None:
        """Nothing to close."""
