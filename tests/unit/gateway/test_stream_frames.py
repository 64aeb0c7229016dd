"""CommittedStream.frames: events already at hand go out in one write, in order."""

from __future__ import annotations

from typing import Any, cast

import pytest

from switchyard_gateway import errors
from switchyard_gateway.providers.base import StreamEvent
from switchyard_gateway.routing.router import CommittedStream


class FakeUpstream:
    """Chunks of events: the first of each chunk from next_event, the rest from ready."""

    def __init__(self, chunks: list[list[bytes]], fail: bool = False) -> None:
        self._chunks = chunks
        self._ready: list[StreamEvent] = []
        self._fail = fail

    async def next_event(self, deadline: float) -> StreamEvent | None:
        if self._ready:
            return self._ready.pop(0)
        if not self._chunks:
            if self._fail:
                raise errors.UpstreamConnectionError("cut", target="a")
            return None
        first, *rest = self._chunks.pop(0)
        self._ready = [StreamEvent(f) for f in rest]
        return StreamEvent(first)

    def ready(self) -> list[StreamEvent]:
        out, self._ready = self._ready, []
        return out


def committed(upstream: FakeUpstream, broken: list[Any]) -> CommittedStream:
    target = cast(Any, type("T", (), {"name": "a"})())
    return CommittedStream(target, [StreamEvent(b"h1"), StreamEvent(b"h2")],
                           cast(Any, upstream), 1e9, broken.append)


async def test_frames_join_what_is_ready() -> None:
    stream = committed(FakeUpstream([[b"a", b"b", b"c"], [b"d"]]), [])
    assert [f async for f in stream.frames()] == [b"h1h2", b"abc", b"d"]


async def test_frames_raise_stream_broken_after_what_was_sent() -> None:
    broken: list[Any] = []
    stream = committed(FakeUpstream([[b"a", b"b"]], fail=True), broken)
    got: list[bytes] = []
    with pytest.raises(errors.StreamBroken):
        async for frame in stream.frames():
            got.append(frame)
    assert got == [b"h1h2", b"ab"] and len(broken) == 1
