"""Live traffic for the demo: a few threads calling the gateway with the OpenAI SDK.

Each thread paces itself so the total stays near `rate` requests per second, and records
one `Sample` per request: when it finished, which target served it (the gateway's
`x-switchyard-target` header), the status and the latency seen by the client. Samples
are kept in a bounded deque under a lock; `since(t)` copies the recent ones for `stats`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque

import openai

MESSAGES = [{"role": "user", "content": "Say hello from the demo."}]
_MAX_SAMPLES = 200_000


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One finished request."""

    at: float  # time.monotonic() when it finished
    target: str  # served by (or tried last); "" when no answer came
    status: int  # HTTP status; 0 when the gateway could not be reached
    seconds: float
    attempts: int  # requests the gateway sent upstream (x-switchyard-attempts)


class TrafficDriver:
    """`start()` the threads, read `since(t)`, `stop()` them (bounded join)."""

    def __init__(self, base_url: str, model: str, rate: float, workers: int = 4) -> None:
        self.base_url = base_url
        self.model = model
        self.workers = max(1, workers)
        self.interval = self.workers / max(rate, 0.1)  # per thread
        self._samples: deque[Sample] = deque(maxlen=_MAX_SAMPLES)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads (daemon threads; `stop` joins them)."""
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, args=(i,), daemon=True,
                                      name=f"demo-traffic-{i}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop sending and wait (bounded) for requests in flight."""
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def since(self, t: float) -> list[Sample]:
        """Samples that finished at or after monotonic time `t`."""
        with self._lock:
            return [s for s in self._samples if s.at >= t]

    def _work(self, index: int) -> None:
        client = openai.OpenAI(base_url=self.base_url + "/v1", api_key="unused-by-the-demo",
                               max_retries=0, timeout=15)
        next_at = time.monotonic() + index * self.interval / self.workers
        try:
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_at = max(next_at + self.interval, time.monotonic() - self.interval)
                sample = self._one(client)
                with self._lock:
                    self._samples.append(sample)
        finally:
            client.close()

    def _one(self, client: openai.OpenAI) -> Sample:
        start = time.monotonic()
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=self.model, messages=MESSAGES)  # type: ignore[arg-type]
            raw.parse()
            status, headers = raw.status_code, raw.headers
        except openai.APIStatusError as exc:
            status, headers = exc.status_code, exc.response.headers
        except openai.APIError:
            status, headers = 0, None
        end = time.monotonic()
        target = headers.get("x-switchyard-target", "") if headers is not None else ""
        attempts = headers.get("x-switchyard-attempts", "0") if headers is not None else "0"
        return Sample(end, target, status, end - start, int(attempts) if attempts.isdigit() else 0)
