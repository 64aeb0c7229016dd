"""An asyncio loop in a background thread, for synchronous callers of async fakes.

The e2e tests and the demo are synchronous (subprocesses, kubectl); the fake providers
are aiohttp servers. `BackgroundLoop` runs them on their own loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """Start with `with BackgroundLoop() as loop:`; run coroutines with `loop.run(coro)`."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="switchyard-background-loop")

    def __enter__(self) -> BackgroundLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run `coro` on the background loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> None:
        """Call a plain function on the loop's thread (for state the loop also touches)."""
        done = threading.Event()

        def wrapper() -> None:
            try:
                fn(*args)
            finally:
                done.set()

        self._loop.call_soon_threadsafe(wrapper)
        done.wait(10)

    def close(self) -> None:
        """Stop the loop and join its thread."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
