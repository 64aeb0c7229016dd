"""The attempt runner: one request to one target, over the process's transport client.

The router calls `complete` (a whole response) or `open_stream` (an SSE stream read event
by event). Around the adapter's pure translation functions this module owns the I/O: the
`Transport` (the socket `Client`, or an in-memory one in unit tests), the key lookup,
timeouts (per attempt until the response starts, idle time between stream reads, and
the whole-request deadline), and the mapping of transport errors to the gateway's error
types, which happens in `map_transport_error` and nowhere else. It never swallows `CancelledError`
(a client disconnect must cancel the upstream) and always releases or closes the
upstream response.

Deadlines are event-loop times (`loop.time()`), passed in by the router.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from switchyard_gateway import errors, redaction
from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.config.compiled import CompiledEndpoint, CompiledTarget
from switchyard_gateway.credentials import Credentials
from switchyard_gateway.providers.base import (
    Adapter,
    ParsedResponse,
    StreamEvent,
    StreamTranslator,
    UpstreamRequest,
    Usage,
)
from switchyard_gateway.providers.sse import SSE_LIMITS, SseLimitExceeded, SseLimits
from switchyard_gateway.routing.capacity import Counted, TargetSlots
from switchyard_gateway.routing.deadlines import Deadlines
from switchyard_gateway.transport import (
    BodyCutOff,
    ConnectError,
    ConnectionClosed,
    LimitExceeded,
    NullObserver,
    Observer,
    Overloaded,
    ProtocolError,
    Transport,
    TransportError,
    UpstreamResponse,
)
from switchyard_schema import Provider

AdapterLookup = Callable[[Provider], Adapter]


def map_transport_error(exc: TransportError | TimeoutError,
                        target: str) -> errors.UpstreamError:
    """The one translation of transport failures into the gateway's error types.

    A connect timeout is a `ConnectError` on both paths, so a `connectionError` (nothing
    was sent); `timeout` is kept for a provider that was sent the request and did not
    answer in time. A crossed limit is the provider's fault: `serverError`. An origin
    without a free connection is the gateway's own overload: `UpstreamOverloaded`.
    """
    if isinstance(exc, TimeoutError):
        return errors.UpstreamTimeout("no response from the provider in time", target=target)
    if isinstance(exc, LimitExceeded):
        return errors.UpstreamServerError(f"the provider's answer is too large: {exc}",
                                          target=target)
    if isinstance(exc, Overloaded):
        return errors.UpstreamOverloaded(str(exc), target=target)
    if isinstance(exc, ConnectError):
        return errors.UpstreamConnectionError(str(exc), target=target)
    if isinstance(exc, ConnectionClosed):
        return errors.UpstreamConnectionError("the provider closed the connection", target=target)
    if isinstance(exc, BodyCutOff):
        return errors.UpstreamConnectionError("the response body was cut off", target=target)
    if isinstance(exc, ProtocolError):
        return errors.UpstreamServerError(f"the provider's answer is broken: {exc}",
                                          target=target)
    return errors.UpstreamConnectionError(str(exc), target=target)


class AttemptSpans(Protocol):
    """The request's trace spans (`telemetry.RequestSpans`), as the routing layer sees them."""

    def attempt(self, endpoint: CompiledEndpoint, target: CompiledTarget,
                number: int) -> None:
        """An attempt at `target` is about to be sent."""

    def traceparent(self) -> str | None:
        """The W3C `traceparent` to send with the attempt in flight."""

    def failed(self, record: errors.AttemptRecord) -> None:
        """The attempt in flight failed."""

    def answered(self, body: bytes) -> None:
        """The served attempt's whole (non-streamed) answer, for its model and finish reasons."""

    def streamed(self, model: str | None, finish_reasons: list[str]) -> None:
        """The served attempt's stream ended: the model it named and its finish reasons."""

    def skipped(self, endpoint: CompiledEndpoint, target: CompiledTarget, number: int,
                record: errors.AttemptRecord) -> None:
        """A candidate was passed over without a request."""


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """What an attempt needs besides the target: the body and the request's context."""

    endpoint: CompiledEndpoint
    body: dict[str, Any]
    request_id: str
    #: Tracing on (`telemetry.py`): the request's spans, whose attempt context goes upstream.
    spans: AttemptSpans | None = None


class UpstreamStream:
    """An open upstream SSE response, read one OpenAI-format event at a time."""

    def __init__(self, response: UpstreamResponse, translator: StreamTranslator,
                 target: CompiledTarget, idle_timeout: float,
                 key: ApiKey | None = None, deadlines: Deadlines | None = None,
                 observer: Observer | None = None) -> None:
        self._response = response
        self._observer = observer or NullObserver()
        self._deadlines = deadlines or Deadlines()
        self._key = key
        self._translator = translator
        self._target = target
        self._idle = idle_timeout
        self._pending: collections.deque[StreamEvent] = collections.deque()
        self._finished = False

    @property
    def usage(self) -> Usage | None:
        """Token counts, once the provider has reported them."""
        return self._translator.usage

    @property
    def model(self) -> str | None:
        """The model the provider named in the stream, if it named one."""
        return self._translator.model

    @property
    def finish_reasons(self) -> list[str]:
        """The finish reason of each choice that finished (by choice index)."""
        return self._translator.finish_reasons

    async def next_event(self, deadline: float) -> StreamEvent | None:
        """The next event, or None at the end of a complete stream.

        Raises an `UpstreamError`: a timeout (idle time or `deadline`), a cut connection,
        an in-band error event, or a stream that ended before its terminating event.
        """
        while not self._pending:
            if self._finished:
                return None
            chunk = await self._read(deadline)
            try:
                if chunk:
                    self._pending.extend(self._translator.feed(chunk))
                else:
                    self._finished = True
                    self._pending.extend(self._translator.finish())
            except errors.UpstreamError as exc:
                exc.target = exc.target or self._target.name
                _redacted(exc, self._key)
                raise
            except SseLimitExceeded as exc:
                # a line or event that never ends: free it and the connection now
                self._observer.limit_exceeded(exc.limit)
                self._response.close()
                raise map_transport_error(LimitExceeded(exc.limit, exc.max_bytes),
                                          self._target.name) from None
        return self._pending.popleft()

    def ready(self) -> list[StreamEvent]:
        """The events already decoded and waiting (no I/O), taken from the queue."""
        if not self._pending:
            return []
        events = list(self._pending)
        self._pending.clear()
        return events

    async def _read(self, deadline: float) -> bytes:
        response = self._response
        try:
            if response.has_data:  # already here: no deadline to arm
                return await response.read_chunk()
            loop = asyncio.get_running_loop()
            with self._deadlines.at(min(deadline, loop.time() + self._idle)):
                return await response.read_chunk()
        except (TransportError, TimeoutError) as exc:
            raise map_transport_error(exc, self._target.name) from exc

    def close(self) -> None:
        """Release the connection (complete stream) or abort it (anything else)."""
        if self._finished:
            self._response.release()
        else:
            self._response.close()


class AttemptRunner:
    """Sends attempts. Holds the transport, the adapter lookup and the credentials;
    `sse_limits` bound each stream's lines and events, `observer` counts crossings."""

    def __init__(self, client: Transport, adapters: AdapterLookup,
                 credentials: Credentials, sse_limits: SseLimits = SSE_LIMITS,
                 observer: Observer | None = None) -> None:
        self._client = client
        self._adapters = adapters
        self._credentials = credentials
        self._sse_limits = sse_limits
        self._observer = observer or NullObserver()
        self._deadlines = Deadlines()
        self._slots = TargetSlots()

    def _prepare(self, call: Call, target: CompiledTarget,
                 stream: bool) -> tuple[UpstreamRequest, ApiKey | None]:
        """Build the upstream request. Raises MissingCredential before anything is sent."""
        key = self._credentials.resolve(call.endpoint.namespace, target.api_key_ref, target.name)
        adapter = self._adapters(target.provider)
        return adapter.build_request(target, call.endpoint.task, call.body, key, stream), key

    async def complete(self, call: Call, target: CompiledTarget, deadline: float) -> ParsedResponse:
        """One non-streaming attempt, bounded by `deadline` from start to full body."""
        request, key = self._prepare(call, target, stream=False)
        adapter = self._adapters(target.provider)
        try:
            with self._deadlines.at(deadline):
                response = await self._send(request, call, target)
                try:
                    raw = await response.read()
                finally:
                    response.release()  # closes the connection unless the body was complete
        except (TransportError, TimeoutError) as exc:
            raise map_transport_error(exc, target.name) from exc
        status = response.status
        if not 200 <= status < 300:
            raise _redacted(_tagged(adapter.map_error(target, status, response.headers, raw),
                                    target), key)
        try:
            return adapter.parse_response(target, call.endpoint.task, raw)
        except errors.UpstreamError as exc:
            raise _redacted(_tagged(exc, target), key) from None

    async def open_stream(self, call: Call, target: CompiledTarget,
                          deadline: float) -> UpstreamStream:
        """Send a streaming attempt and return once the response headers are in."""
        request, key = self._prepare(call, target, stream=True)
        adapter = self._adapters(target.provider)
        response: UpstreamResponse | None = None
        try:
            with self._deadlines.at(deadline):
                response = await self._send(request, call, target)
                if not 200 <= response.status < 300:
                    raw = await response.read()
                    raise _redacted(_tagged(
                        adapter.map_error(target, response.status, response.headers, raw),
                        target), key)
        except (TransportError, TimeoutError) as exc:
            if response is not None:
                response.close()
            raise map_transport_error(exc, target.name) from exc
        except BaseException:
            if response is not None:
                response.close()
            raise
        translator = adapter.stream_translator(target, call.endpoint.task, self._sse_limits)
        return UpstreamStream(response, translator, target,
                              call.endpoint.policy.stream_idle_timeout, key, self._deadlines,
                              self._observer)

    async def _send(self, request: UpstreamRequest, call: Call,
                    target: CompiledTarget) -> UpstreamResponse:
        headers = {**request.headers, "x-request-id": call.request_id}
        if call.spans is not None:
            traceparent = call.spans.traceparent()
            if traceparent is not None:
                headers["traceparent"] = traceparent
        cap = target.max_concurrent
        if cap is None:
            return await self._client.request(request.method, request.url, headers,
                                              request.body)
        # a capped target (`maxConcurrentRequests`): its slot rides on the response
        key = (call.endpoint.key, target.identity)
        self._slots.take(key, cap, target.name)
        try:
            response = await self._client.request(request.method, request.url, headers,
                                                  request.body)
        except BaseException:
            self._slots.give_back(key)
            raise
        return Counted(response, self._slots, key)


def _tagged(exc: errors.UpstreamError, target: CompiledTarget) -> errors.UpstreamError:
    exc.target = exc.target or target.name
    return exc


def _redacted(exc: errors.UpstreamError, key: ApiKey | None) -> errors.UpstreamError:
    """Scrub the attempt's own key (whole or in pieces) out of an upstream message, at
    the source: some providers echo the key they were sent (a misconfigured proxy, a
    debug endpoint). The router scrubs every message again against every known key,
    transport failures included, and cuts it only after that (`redaction`)."""
    if key is not None:
        exc.message = redaction.Redactor((key.reveal(),)).scrub(exc.message, limit=None)
        exc.args = (exc.message,)
    return exc
