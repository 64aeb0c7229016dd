"""What a fake provider does with each request: scripted behaviours and random faults.

Shared by every fake (`server.FakeProvider`). A test pushes behaviours onto a queue (for
every request, or only for requests naming one model) and each request takes the next one;
when the queues are empty, a fault is drawn from `rates` (seeded, so runs repeat), else the
request succeeds. The demo and the bench drive the same object through the CLI
(`--fault-rate`) or the fakes' `/_fake/script` control route.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections import deque
from collections.abc import Mapping


class Fault(enum.StrEnum):
    """Every way a fake can answer."""

    OK = "ok"
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After
    RATE_LIMIT_BARE = "rate_limit_bare"  # 429 without Retry-After
    SERVER_ERROR = "server_error"  # 500
    BAD_GATEWAY = "bad_gateway"  # 502
    UNAVAILABLE = "unavailable"  # 503
    OVERLOADED = "overloaded"  # 529, Anthropic's overloaded_error
    UNAUTHORIZED = "unauthorized"  # 401
    BAD_REQUEST = "bad_request"  # 400
    HANG = "hang"  # sleep past any sensible timeout, then answer
    RESET = "reset"  # drop the connection before any response
    CUT_STREAM = "cut_stream"  # stream ends cleanly after N frames, without its terminator
    RESET_STREAM = "reset_stream"  # connection dropped after N frames
    MALFORMED = "malformed"  # 200 with a body (or stream event) that is not JSON
    SLOW = "slow"  # success, each stream frame after `slow_delay`
    IN_BAND_ERROR = "in_band_error"  # 200 stream, then the provider's error event
    STALL = "stall"  # stream: N frames, then silence for `hang_seconds`, then the rest
    NO_DONE = "no_done"  # stream: every frame (finish reason, usage) but the terminator
    CONTEXT_LENGTH = "context_length"  # 400, the prompt is over the context window
    CONTENT_FILTER = "content_filter"  # 400, the content filter refused the prompt


#: Faults answered with an HTTP error status, and that status.
STATUS_OF: Mapping[Fault, int] = {
    Fault.RATE_LIMIT: 429,
    Fault.RATE_LIMIT_BARE: 429,
    Fault.SERVER_ERROR: 500,
    Fault.BAD_GATEWAY: 502,
    Fault.UNAVAILABLE: 503,
    Fault.OVERLOADED: 529,
    Fault.UNAUTHORIZED: 401,
    Fault.BAD_REQUEST: 400,
    Fault.CONTEXT_LENGTH: 400,
    Fault.CONTENT_FILTER: 400,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Behaviour:
    """One request's fate. Zero-argument `Behaviour()` is a plain success."""

    fault: Fault = Fault.OK
    #: Retry-After seconds sent with RATE_LIMIT (and 503/529); 0 sends none.
    retry_after: float = 1.0
    #: Frames sent before CUT_STREAM/RESET_STREAM/MALFORMED/IN_BAND_ERROR/STALL strike. The first
    #: frame never carries content (OpenAI's role chunk, Anthropic's message_start), so 1
    #: means "before any content". Default: 1 for IN_BAND_ERROR, else half the stream
    #: (after some content).
    after_frames: int | None = None
    #: HANG's sleep, and STALL's silence mid-stream (cut short when the fake closes).
    hang_seconds: float = 30.0
    #: SLOW's delay before each stream frame.
    slow_delay: float = 0.2

    def frames_before_fault(self, total: int) -> int:
        """`after_frames`, or the fault's default for a stream of `total` frames."""
        if self.after_frames is not None:
            return self.after_frames
        return 1 if self.fault is Fault.IN_BAND_ERROR else total // 2


OK = Behaviour()


class Script:
    """Per-request behaviour: queued (global or per model) first, then random faults."""

    def __init__(self, rates: Mapping[Fault, float] | None = None, seed: int | None = 0) -> None:
        self._queue: deque[Behaviour] = deque()
        self._by_model: dict[str, deque[Behaviour]] = {}
        self._rng = random.Random(seed)
        self._rates: tuple[tuple[Fault, float], ...] = ()
        self.set_rates(rates or {})

    def push(self, *behaviours: Behaviour | Fault, model: str | None = None) -> None:
        """Queue behaviours for the next requests (only those naming `model`, if given)."""
        queue = self._queue if model is None else self._by_model.setdefault(model, deque())
        queue.extend(b if isinstance(b, Behaviour) else Behaviour(b) for b in behaviours)

    def set_rates(self, rates: Mapping[Fault, float]) -> None:
        """Draw `fault` with probability `rate` for unscripted requests; rates sum to <= 1."""
        if sum(rates.values()) > 1.0 + 1e-9 or any(r < 0 for r in rates.values()):
            raise ValueError("fault rates must be >= 0 and sum to at most 1")
        self._rates = tuple(rates.items())

    def clear(self) -> None:
        """Forget queued behaviours and rates."""
        self._queue.clear()
        self._by_model.clear()
        self._rates = ()

    def next(self, model: str = "") -> Behaviour:
        """The behaviour for the next request (for `model`)."""
        queue = self._by_model.get(model)
        if queue:
            return queue.popleft()
        if self._queue:
            return self._queue.popleft()
        if self._rates:
            draw = self._rng.random()
            for fault, rate in self._rates:
                if draw < rate:
                    return Behaviour(fault)
                draw -= rate
        return OK
