"""A bounded LRU cache whose entries turn stale, then expire; and single-flight calls.

Used by `guard.py` for token reviews and access decisions. An entry is *fresh* until
`fresh_until` (served without asking the API server), then *stale* until `stale_until`
(served only when the API server cannot be reached), then gone. The size bound evicts the
least recently used entry, so a flood of distinct tokens cannot grow memory. All times
come from one monotonic clock. Runs on the event loop only (no locks).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclasses.dataclass(frozen=True, slots=True)
class Entry(Generic[V]):
    """A cached value with its freshness bounds (monotonic seconds)."""

    value: V
    fresh_until: float
    stale_until: float


class LruCache(Generic[K, V]):
    """At most `max_entries` entries; expired ones are dropped when met."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: collections.OrderedDict[K, Entry[V]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> Entry[V] | None:
        """The entry (fresh or stale), or None once it expired or was evicted."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.stale_until <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def fresh(self, key: K) -> Entry[V] | None:
        """The entry if it is still fresh, else None (a stale entry stays for `get`).

        The hot path of every authenticated request: one dict lookup, one clock read.
        """
        entry = self._entries.get(key)
        if entry is None or entry.fresh_until <= self._clock():
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: K, value: V, fresh_for: float, stale_for: float = 0.0) -> None:
        """Keep `value` fresh for `fresh_for` seconds, then stale for `stale_for` more."""
        if fresh_for <= 0:
            self._entries.pop(key, None)
            return
        now = self._clock()
        self._entries[key] = Entry(value, now + fresh_for, now + fresh_for + max(0.0, stale_for))
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


class SingleFlight(Generic[K, V]):
    """Concurrent calls for one key share one run of the work.

    The work runs as its own task: a waiter that is cancelled (its client hung up) does not
    cancel it for the others, and its result still lands in the cache it fills.
    """

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """The result of `work()` for `key`, started now or already under way."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody waited for is not "never retrieved"
