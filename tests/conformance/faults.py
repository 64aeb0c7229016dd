"""The sixteen faults LLM gateways are crash-tested on (issue 19), as fake-provider scripts,
and the scaled policy the conformance tests run them under.

The fake is the test kit's `FakeOpenAI` (a real aiohttp server on loopback) with a
60-word reply, so "a stream cut after 40 of 60 tokens" means what it says: one content
frame per word. Each fault is a `Behaviour` (or a sequence of them) from
`switchyard_testing.fakes.script`; the fake records every request with its arrival time,
which is the conduct the tests check (attempts, spacing, recovery).

Scaling. The public comparison runs with 10 s attempt and stream-idle timeouts; here they
are 1 s, and every fault that is a duration is scaled with them (÷10), so each test takes
a few seconds of wall time and the ratios that decide the conduct are kept: the first
token after 2 s (issue: 20 s) is past the 1 s attempt timeout, as 20 s is past 10 s; a
stall of 3 s (30 s) is past the 1 s idle timeout. The outage is scaled against the probe
interval instead: down 3 s with a 1 s probe interval (issue: 60 s against the default
30 s), so recovery "within one probe interval" is measured, not waited out. `Retry-After:
2` is kept as is: 2 s is the provider's word, and under `retry.maxRetryAfterSeconds`.
"""

from __future__ import annotations

from typing import Any

from switchyard_testing.fakes import Behaviour, FakeOpenAI, Fault
from switchyard_testing.fakes.server import Operation

#: Words in the fake's reply: one content frame each.
REPLY_WORDS = 60

#: The policy of every conformance endpoint (see the module docstring for the scaling).
POLICY: dict[str, Any] = {
    "attemptTimeoutSeconds": 1,
    "streamIdleTimeoutSeconds": 1,
    "requestTimeoutSeconds": 10,
    "cooldown": {"failureThreshold": 3, "seconds": 1, "maxProbeIntervalSeconds": 1},
    "retry": {"maxRetries": 1, "backoffMilliseconds": 100, "maxRetryAfterSeconds": 5},
}


class LongFake(FakeOpenAI):
    """`FakeOpenAI` with a 60-word reply that still names who served it."""

    def reply_text(self, op: Operation) -> str:
        words = [f"{self.name}:{op.model}"] + [f"w{i}" for i in range(2, REPLY_WORDS + 1)]
        return " ".join(words)


#: The sixteen faults, by the name the tests use: what the primary does.
FAULTS: dict[str, tuple[Behaviour, ...]] = {
    "rate_limit_retry_after_2_once": (Behaviour(Fault.RATE_LIMIT, retry_after=2.0),),
    "rate_limit_without_retry_after_persistent": (Behaviour(Fault.RATE_LIMIT_BARE),) * 50,
    "server_error_once": (Behaviour(Fault.SERVER_ERROR),),
    "unavailable_persistent": (Behaviour(Fault.UNAVAILABLE, retry_after=0),) * 50,
    "reset_before_headers": (Behaviour(Fault.RESET),),
    "no_response": (Behaviour(Fault.HANG, hang_seconds=30.0),),
    # The role chunk (and with it the first token) only after 2 s: SLOW delays each frame.
    "first_token_after_2s": (Behaviour(Fault.SLOW, slow_delay=2.0),),
    # Role chunk + 40 content frames, then the connection is reset.
    "stream_cut_after_40_of_60": (Behaviour(Fault.RESET_STREAM, after_frames=41),),
    "stream_stalled": (Behaviour(Fault.STALL, after_frames=21, hang_seconds=3.0),),
    "malformed_chunk_mid_stream": (Behaviour(Fault.MALFORMED, after_frames=21),),
    "stream_without_done": (Behaviour(Fault.NO_DONE),),
    "context_length_exceeded": (Behaviour(Fault.CONTEXT_LENGTH),),
    "content_filter": (Behaviour(Fault.CONTENT_FILTER),),
    # The primary's stream is cut; the fallback would refuse an assistant prefill (400).
    "cut_stream_fallback_rejects_prefill": (Behaviour(Fault.RESET_STREAM, after_frames=41),),
    "down_then_healthy": (),  # driven by rates over time, see the test
    "unavailable_fallback_answers": (Behaviour(Fault.UNAVAILABLE, retry_after=0),) * 50,
}
