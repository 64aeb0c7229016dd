"""Deadlines without a timer per deadline: one coarse wheel per event loop.

`asyncio.timeout_at` arms an event-loop timer on entry and cancels it on exit; under
uvloop that is a libuv timer plus a `Timeout` object, 3-4 us per request and again per
stream read, which the gateway paid on every attempt. `Deadlines.at(when)` instead files
the current task into a bucket of `TICK` seconds; one loop timer, armed only while any
deadline is pending, wakes each tick and cancels the tasks whose deadline has passed.
Entering and leaving a deadline is a dict insert and delete.

Semantics match `asyncio.timeout_at` (a synchronous `with` block): an expired deadline
cancels the task, and the block turns that cancellation into `TimeoutError`; a
cancellation from anywhere else (a client disconnect) passes through untouched. A
deadline fires up to one tick late, which is far below any configured timeout.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

#: Resolution of the wheel, in seconds.
TICK = 0.01


class Deadline:
    """One pending deadline: the `with` block of `Deadlines.at`."""

    __slots__ = ("_cancelling", "_slot", "_task", "_wheel", "expired")

    def __init__(self, wheel: Deadlines, slot: int) -> None:
        self._wheel = wheel
        self._slot = slot
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self.expired = False

    def __enter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.at must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._wheel._add(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.expired:
            self._wheel._remove(self)
            return
        assert self._task is not None
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def _expire(self) -> None:
        self.expired = True
        assert self._task is not None
        self._task.cancel()


class Deadlines:
    """The wheel: buckets of pending deadlines keyed by tick number, one loop timer."""

    def __init__(self, tick: float = TICK) -> None:
        self._tick = tick
        self._buckets: dict[int, dict[Deadline, None]] = {}
        self._count = 0
        self._next = 0  # the first bucket not yet expired
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def at(self, when: float) -> Deadline:
        """A `with` block that raises TimeoutError once `loop.time()` passes `when`."""
        return Deadline(self, math.ceil(when / self._tick))

    def _add(self, deadline: Deadline) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new loop (tests): start afresh
            self._loop, self._buckets, self._count, self._timer = loop, {}, 0, None
            self._next = math.ceil(loop.time() / self._tick)
        elif self._timer is None and not self._count:  # idle: skip the empty ticks
            self._next = max(self._next, math.floor(loop.time() / self._tick))
        slot = deadline._slot
        if slot < self._next:  # already past: expire on the next tick
            slot = deadline._slot = self._next
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = {}
        bucket[deadline] = None
        self._count += 1
        if self._timer is None:
            self._timer = loop.call_at(self._next * self._tick, self._fire)

    def _remove(self, deadline: Deadline) -> None:
        bucket = self._buckets.get(deadline._slot)
        if bucket is not None and bucket.pop(deadline, 0) is None:
            self._count -= 1
            if not bucket:
                del self._buckets[deadline._slot]

    def _fire(self) -> None:
        loop = self._loop
        assert loop is not None
        self._timer = None
        now = math.floor(loop.time() / self._tick)
        buckets = self._buckets
        while self._next <= now:
            bucket = buckets.pop(self._next, None)
            self._next += 1
            if bucket:
                self._count -= len(bucket)
                for deadline in bucket:
                    deadline._expire()
        if self._count:
            self._timer = loop.call_at(self._next * self._tick, self._fire)
