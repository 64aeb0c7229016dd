"""The router: choose a traffic-split target, then walk the fallbacks in order.

Called by the HTTP layer with a resolved `CompiledEndpoint` and the parsed body. The
order of candidates is: the split target (weighted, or sticky by caller key), then every
fallback in its listed order, skipping any whose identity was already tried in this
request. A candidate in cooldown is skipped without an attempt. A 429, an HTTP 5xx or a
reset before the answer is first retried on the same target (`policy.retry`: backoff
with jitter, or the provider's Retry-After when short, within the deadline; `_retry`),
each retry an attempt of its own. Then each attempt that fails with a kind the policy
names moves on to the next candidate; a caller fault is returned at once (except
`contextLength` when the policy names it: then candidates whose declared context window
is no larger are skipped); any other failure ends the walk.
`policy.requestTimeoutSeconds` bounds the whole walk. The outcome of every attempt is
written to the request's `RequestTrace`, which the HTTP layer turns into headers,
metrics and the access log. Every failed attempt's message is scrubbed of key material
and then cut (`redaction`) here, before anything else sees it.

The final failure: 429 when every candidate reached was unavailable because of rate
limits (rate limited now, or skipped while cooling down from an earlier 429), with
Retry-After; 504 when the last failure was a timeout; 503 with Retry-After when it was the
gateway's own overload (no free connection to the origin); else 502. `RequestTrace.target`
names the last target tried or skipped.

Streaming: an attempt is committed when its first content event is ready; until then a
failure (even an error event after a 200) falls back like any other. After the commit the
HTTP layer owns the stream (`CommittedStream`) and a failure can only end it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from switchyard_gateway import errors, redaction, transport
from switchyard_gateway.config.compiled import CompiledEndpoint, CompiledTarget
from switchyard_gateway.providers.base import ParsedResponse, StreamEvent, Usage
from switchyard_gateway.routing import choice, policy
from switchyard_gateway.routing.attempts import AttemptRunner, AttemptSpans, Call, UpstreamStream
from switchyard_gateway.routing.cooldown import BreakerKey, Cooldowns

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class RequestTrace:
    """What happened to one request: filled by the router, read by the HTTP layer."""

    request_id: str
    endpoint: str = ""
    target: str = ""
    attempts: list[errors.AttemptRecord] = dataclasses.field(default_factory=list)
    usage: Usage | None = None
    upstream_seconds: float | None = None
    first_token_seconds: float | None = None
    stream: bool = False
    #: The client hung up before the answer was complete (accounted as status 499).
    client_closed: bool = False
    #: A committed stream broke after content was sent: the failure kind (`timeout`,
    #: `connectionError`, `serverError`, `rateLimit`), for the access log and metrics.
    broken: str | None = None
    #: `--auth kubernetes`: the caller's namespace label (empty: caller identity is off).
    caller_namespace: str = ""
    #: The upstream model of the serving target (for the GenAI metrics and the cost).
    model: str = ""
    #: Tracing on (`telemetry.py`): the request's spans; None (the default) costs nothing.
    span: AttemptSpans | None = None

    @property
    def sent(self) -> int:
        """How many requests actually went upstream."""
        return sum(1 for a in self.attempts if a.sent)


@dataclasses.dataclass(slots=True)
class CommittedStream:
    """A stream whose first content event is ready: the target is final."""

    target: CompiledTarget
    head: list[StreamEvent]
    upstream: UpstreamStream
    deadline: float
    on_break: Callable[[errors.UpstreamError], None]

    async def frames(self) -> AsyncIterator[bytes]:
        """The head events, then the rest as they arrive, every event already at hand
        joined into one write.

        Raises `StreamBroken` if the upstream fails after the commit.
        """
        pending = [event.frame for event in self.head]
        pending.extend(event.frame for event in self.upstream.ready())
        while True:
            if pending:
                yield b"".join(pending)
            try:
                upcoming = await self.upstream.next_event(self.deadline)
            except errors.UpstreamError as exc:
                self.on_break(exc)
                raise errors.StreamBroken(exc.message, target=self.target.name,
                                          upstream_status=exc.upstream_status) from exc
            if upcoming is None:
                return
            pending = [upcoming.frame]
            pending.extend(event.frame for event in self.upstream.ready())

    def close(self) -> None:
        """Release or abort the upstream connection."""
        self.upstream.close()


@dataclasses.dataclass(slots=True)
class _Walk:
    """State of one walk through the candidates."""

    call: Call
    trace: RequestTrace
    deadline: float
    last_error: errors.UpstreamError | None = None
    retry_afters: list[float] = dataclasses.field(default_factory=list)
    #: Targets tried or skipped, in order.
    reached: list[CompiledTarget] = dataclasses.field(default_factory=list)
    #: False once a candidate was unavailable for a reason other than a rate limit.
    only_rate_limits: bool = True
    #: Whether the last failure moves the walk on to the next candidate.
    goes_on: bool = True
    #: After a contextLength failure at a target of known window: the largest such window.
    window_limit: int | None = None
    #: Candidates that cannot express the request (nothing sent), in order.
    unsupported: list[errors.Unsupported] = dataclasses.field(default_factory=list)


Redactors = Callable[[], redaction.Redactor]

#: Added to a provider's Retry-After before the retry, so the breaker it opened is over.
_RETRY_AFTER_SLACK = 0.01
#: Provider error type/code/param are identifiers: anything longer is cut.
_FIELD_LIMIT = 100


class Router:
    """Routes requests; shared by all requests of one app."""

    def __init__(self, runner: AttemptRunner, cooldowns: Cooldowns,
                 rng: random.Random | None = None, redactor: Redactors = redaction.no_keys) -> None:
        """`redactor` gives the current key scrubber (`Credentials.redactor`)."""
        self._runner = runner
        self._cooldowns = cooldowns
        self._rng = rng or random.Random()
        self._redactor = redactor

    def _split_index(self, endpoint: CompiledEndpoint, sticky_key: str | None) -> int:
        if len(endpoint.split) == 1:
            return 0
        if sticky_key is not None and endpoint.policy.sticky_enabled:
            return choice.sticky_index(sticky_key, endpoint.split)
        return choice.weighted_index(endpoint.cumulative_weights, self._rng)

    async def complete(self, call: Call, trace: RequestTrace,
                       sticky_key: str | None = None) -> ParsedResponse:
        """Route a non-streaming request. Raises CallerFault or AllAttemptsFailed."""
        async def attempt(target: CompiledTarget, deadline: float) -> ParsedResponse:
            started = time.perf_counter()
            result = await self._runner.complete(call, target, deadline)
            trace.upstream_seconds = time.perf_counter() - started
            trace.usage = result.usage
            return result
        return await self._walk(call, trace, sticky_key, attempt)

    async def open_stream(self, call: Call, trace: RequestTrace,
                          sticky_key: str | None = None) -> CommittedStream:
        """Route a streaming request up to its first content event."""
        trace.stream = True
        walk_deadline = asyncio.get_running_loop().time() + call.endpoint.policy.request_timeout

        async def attempt(target: CompiledTarget, deadline: float) -> CommittedStream:
            started = time.perf_counter()
            upstream = await self._runner.open_stream(call, target, deadline)
            try:
                head = await _read_head(upstream, deadline)
            except BaseException:
                upstream.close()
                raise
            trace.first_token_seconds = time.perf_counter() - started
            key = (call.endpoint.key, target.identity)
            return CommittedStream(target, head, upstream, walk_deadline,
                                   lambda exc: self._broken(call, trace, key, exc))
        return await self._walk(call, trace, sticky_key, attempt)

    def _broken(self, call: Call, trace: RequestTrace, key: BreakerKey,
                exc: errors.UpstreamError) -> None:
        """A committed stream failed: the served attempt's record takes the failure's kind
        (it was recorded "ok" at the commit), so the access log and metrics tell a cut
        answer from a complete one; the breaker counts it like any failure."""
        self._scrub(exc)
        trace.broken = _outcome(exc)
        if trace.attempts:
            trace.attempts[-1] = dataclasses.replace(
                trace.attempts[-1], outcome=trace.broken, message=errors.cut(exc.message, 200))
        if policy.trips_breaker(exc):
            self._cooldowns.failure(key, call.endpoint.policy, exc.retry_after,
                                    isinstance(exc, errors.RateLimited))

    def _scrub(self, exc: errors.UpstreamError) -> None:
        """Key material out of the message first, then the cut (never the other way);
        the provider's error type, code and param too, which reach the caller."""
        redactor = self._redactor()
        exc.message = redactor.scrub(exc.message, errors.DETAIL_LIMIT)
        exc.args = (exc.message,)
        if isinstance(exc, errors.CallerFault):
            for field in ("provider_type", "provider_code", "provider_param"):
                value = getattr(exc, field)
                if value is not None:
                    setattr(exc, field, redactor.scrub(value, _FIELD_LIMIT))

    def candidates(self, endpoint: CompiledEndpoint,
                   sticky_key: str | None) -> Sequence[CompiledTarget]:
        """The split target then the fallbacks, duplicates (by identity) removed."""
        return endpoint.candidates[self._split_index(endpoint, sticky_key)]

    async def _walk(self, call: Call, trace: RequestTrace, sticky_key: str | None,
                    attempt: Callable[[CompiledTarget, float], Awaitable[T]]) -> T:
        endpoint = call.endpoint
        trace.endpoint = endpoint.key
        policy_ = endpoint.policy
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy_.request_timeout
        walk: _Walk | None = None  # failure bookkeeping, made on the first failure only
        candidates = self.candidates(endpoint, sticky_key)
        other_arms = False
        while True:  # once; twice when no candidate could express the request
            for target in candidates:
                now = loop.time()
                if now >= deadline:
                    walk = walk or _Walk(call, trace, deadline)
                    walk.last_error = errors.UpstreamTimeout("request deadline reached")
                    walk.only_rate_limits = False
                    break
                trace.target = target.name
                key = (endpoint.key, target.identity)
                if walk is not None and _too_small(walk, target):
                    continue
                if not self._cooldowns.allow(key, policy_):
                    walk = walk or _Walk(call, trace, deadline)
                    self._skipped(walk, target, key)
                    continue
                retries = 0
                while True:  # one pass per attempt at this target: the first, then retries
                    if trace.span is not None:
                        trace.span.attempt(endpoint, target, len(trace.attempts) + 1)
                    started = time.perf_counter()
                    try:
                        result = await attempt(target,
                                               min(deadline, now + policy_.attempt_timeout))
                    except errors.UpstreamError as exc:
                        walk = walk or _Walk(call, trace, deadline)
                        walk.goes_on = self._failed(walk, target, key, exc,
                                                    time.perf_counter() - started)
                        if not await self._retry(walk, key, exc, retries):
                            break
                        retries += 1
                        now = loop.time()
                        continue
                    except BaseException as exc:
                        self._cooldowns.release(key)
                        if isinstance(exc, asyncio.CancelledError):  # the client hung up
                            trace.attempts.append(errors.AttemptRecord(
                                target.name, "client_closed", None,
                                _ms(time.perf_counter() - started), sent=True,
                                message="the client closed the connection"))
                        raise
                    self._cooldowns.success(key)
                    trace.model = target.model
                    trace.attempts.append(errors.AttemptRecord(
                        target.name, "ok", 200, _ms(time.perf_counter() - started), sent=True))
                    return result
                if not walk.goes_on:
                    break
            if other_arms or walk is None or not _only_unsupported(walk):
                break
            # No candidate could express the request (a parameter its provider lacks): the
            # other split arms may, so a request gets the same answer whichever arm it drew.
            candidates = [t for t in endpoint.split if t not in walk.reached]
            other_arms = True
        walk = walk or _Walk(call, trace, deadline)
        if _only_unsupported(walk):
            raise _none_can_serve(walk.unsupported)
        if isinstance(walk.last_error, errors.CallerFault):
            raise walk.last_error  # a contextLength failure no larger target could take
        raise _final_failure(walk, self._cooldowns)

    async def _retry(self, walk: _Walk, key: BreakerKey, exc: errors.UpstreamError,
                     retries: int) -> bool:
        """Wait and return True when the failed target is worth another attempt now.

        Retried (`_retryable`): a 429, an HTTP 5xx and a connection the provider closed
        before its answer began, up to `retry_max` times, after the provider's Retry-After
        when it is at most `retry_max_wait`, else after a jittered, doubling backoff; never
        past the request deadline. Not retried: timeouts (the attempt already used its
        whole timeout; the next candidate is a better use of what is left), auth failures,
        caller faults, and the other failures `_retryable` names.
        The breaker has the last word: a failure that tripped it (or a probe in flight
        from another request) moves the request on instead.
        """
        policy_ = walk.call.endpoint.policy
        if retries >= policy_.retry_max or not _retryable(exc):
            return False
        backoff = policy_.retry_backoff * 2 ** retries * (0.5 + 0.5 * self._rng.random())
        wait = backoff
        if exc.retry_after is not None:
            if exc.retry_after > policy_.retry_max_wait:
                return False
            wait = max(exc.retry_after + _RETRY_AFTER_SLACK, backoff)
        loop = asyncio.get_running_loop()
        if loop.time() + wait >= walk.deadline:
            return False
        if not self._cooldowns.claimable(key, wait):
            return False
        await asyncio.sleep(wait)
        return self._cooldowns.allow(key, policy_)

    def _skipped(self, walk: _Walk, target: CompiledTarget, key: BreakerKey) -> None:
        """Record a candidate skipped because it is cooling down."""
        limited = self._cooldowns.rate_limited(key)
        walk.reached.append(target)
        walk.only_rate_limits = walk.only_rate_limits and limited
        why = "a rate limit (429)" if limited else "repeated failures"
        walk.trace.attempts.append(errors.AttemptRecord(
            target.name, "cooldown", None, 0.0, sent=False,
            message=f"target cooling down after {why}"))
        _skip_span(walk, target)

    def _failed(self, walk: _Walk, target: CompiledTarget, key: BreakerKey,
                exc: errors.UpstreamError, seconds: float) -> bool:
        """Record a failed attempt; True when the walk goes on to the next candidate."""
        self._scrub(exc)
        sent = not isinstance(exc, (errors.MissingCredential, errors.Unsupported))
        rate_limited = isinstance(exc, errors.RateLimited)
        walk.reached.append(target)
        walk.only_rate_limits = walk.only_rate_limits and rate_limited
        walk.trace.attempts.append(errors.AttemptRecord(
            target.name, _outcome(exc), exc.upstream_status, _ms(seconds), sent=sent,
            message=errors.cut(exc.message, 200)))
        if walk.trace.span is not None:
            walk.trace.span.failed(walk.trace.attempts[-1])
        if isinstance(exc, errors.Unsupported):  # not the target's failure: no cooldown
            self._cooldowns.release(key)
            walk.unsupported.append(exc)
            return True
        if isinstance(exc, errors.CallerFault):
            self._cooldowns.release(key)
            if not policy.falls_back(walk.call.endpoint.policy, exc):
                raise exc
            walk.last_error = exc
            window = target.context_window
            if window is not None:  # later candidates no larger than this are skipped
                walk.window_limit = max(window, walk.window_limit or 0)
            return True
        if policy.trips_breaker(exc):
            self._cooldowns.failure(key, walk.call.endpoint.policy, exc.retry_after,
                                    rate_limited)
        else:
            self._cooldowns.release(key)
        walk.last_error = exc
        if rate_limited and exc.retry_after is not None:
            walk.retry_afters.append(exc.retry_after)
        return policy.falls_back(walk.call.endpoint.policy, exc)


def _retryable(exc: errors.UpstreamError) -> bool:
    """Is this failure a blip that the same target may well not repeat?

    Yes: a rate limit; a 5xx the provider answered with; a connection the provider
    closed before its answer began (a reset before the headers). No: a connection that
    could not be opened (refused, DNS, TLS, connect timeout, a refused address: nothing
    reached the provider, and the cause rarely passes in a quarter second); a 200 that
    then broke or sent something unparseable or oversized (an answer was under way; more
    of the same is likely); anything else.
    """
    if isinstance(exc, errors.RateLimited):
        return True
    if isinstance(exc, errors.UpstreamServerError):
        return exc.upstream_status is not None and exc.upstream_status >= 500
    if isinstance(exc, errors.UpstreamConnectionError):
        return isinstance(exc.__cause__, transport.ConnectionClosed)
    return False


def _too_small(walk: _Walk, target: CompiledTarget) -> bool:
    """Skip (and record) a candidate whose declared context window is no larger than one
    that already refused the prompt as too long."""
    limit, window = walk.window_limit, target.context_window
    if limit is None or window is None or window > limit:
        return False
    walk.reached.append(target)
    walk.only_rate_limits = False
    walk.trace.attempts.append(errors.AttemptRecord(
        target.name, "contextLength", None, 0.0, sent=False,
        message=f"context window {window} tokens is no larger than {limit}, which was too small"))
    _skip_span(walk, target)
    return True


def _skip_span(walk: _Walk, target: CompiledTarget) -> None:
    """Tracing on: the skip just recorded as a zero-length attempt span."""
    trace = walk.trace
    if trace.span is not None:
        trace.span.skipped(walk.call.endpoint, target, len(trace.attempts), trace.attempts[-1])


async def _read_head(upstream: UpstreamStream, deadline: float) -> list[StreamEvent]:
    """Events up to and including the first content event (or all, if none has content)."""
    head: list[StreamEvent] = []
    while True:
        event = await upstream.next_event(deadline)
        if event is None:
            return head
        head.append(event)
        if event.is_content:
            return head


def _outcome(exc: errors.UpstreamError) -> str:
    if isinstance(exc, errors.MissingCredential):
        return "missingCredential"
    if isinstance(exc, errors.Unsupported):
        return "unsupported"
    if isinstance(exc, errors.CallerFault) and exc.kind is None:
        return "callerFault"
    return exc.kind.value if exc.kind is not None else "error"


def _only_unsupported(walk: _Walk) -> bool:
    """Every candidate reached so far could not express the request (nothing was sent)."""
    return bool(walk.unsupported) and len(walk.unsupported) == len(walk.reached)


def _none_can_serve(unsupported: list[errors.Unsupported]) -> errors.Unsupported:
    """400 naming what no candidate could express, and the targets that said so."""
    whats = list(dict.fromkeys(u.what for u in unsupported))
    targets = ", ".join(f"{u.target} ({u.provider})" for u in unsupported)
    what = " and ".join(whats)
    return errors.Unsupported(what, target=unsupported[-1].target, message=(
        f"{what} is not supported by any target of this endpoint: {targets}"))


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


def _final_failure(walk: _Walk, cooldowns: Cooldowns) -> errors.AllAttemptsFailed:
    """429 when every candidate reached was out because of rate limits; 504 after a
    timeout; 503 after the gateway's own overload; else 502.

    A 429 always carries Retry-After: the providers' shortest Retry-After, else the time
    until the first candidate leaves cooldown, else `errors.DEFAULT_RETRY_AFTER`. When
    nothing could be sent because every candidate was cooling down for other reasons, the
    answer is 502 with the time until the first cooldown ends as Retry-After, so a client
    knows when a probe will be let through.
    """
    attempts = walk.trace.attempts
    summary = "; ".join(f"{a.target}: {a.status or a.outcome}" for a in attempts) or "no targets"
    message = f"all targets of endpoint {walk.call.endpoint.key} failed ({summary})"
    if attempts and walk.only_rate_limits:
        retry = (min(walk.retry_afters) if walk.retry_afters
                 else _first_cooldown_end(walk, cooldowns) or errors.DEFAULT_RETRY_AFTER)
        return errors.AllAttemptsFailed(message, attempts, 429, retry)
    if attempts and all(not a.sent and a.outcome == "cooldown" for a in attempts):
        retry_after = _first_cooldown_end(walk, cooldowns) or errors.DEFAULT_RETRY_AFTER
        return errors.AllAttemptsFailed(message, attempts, 502, retry_after)
    if isinstance(walk.last_error, errors.UpstreamTimeout):
        return errors.AllAttemptsFailed(message, attempts, 504)
    if isinstance(walk.last_error, errors.UpstreamOverloaded):
        return errors.AllAttemptsFailed(message, attempts, 503, errors.DEFAULT_RETRY_AFTER)
    return errors.AllAttemptsFailed(message, attempts, 502)


def _first_cooldown_end(walk: _Walk, cooldowns: Cooldowns) -> float | None:
    """Whole seconds until the first target reached leaves cooldown (None: none is out)."""
    key = walk.call.endpoint.key
    waits = [w for w in (cooldowns.remaining((key, t.identity)) for t in walk.reached) if w > 0]
    return float(max(1, math.ceil(min(waits)))) if waits else None
