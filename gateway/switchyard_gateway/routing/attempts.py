"""The attempt runner: one request to one target, over the app's shared ClientSession.

The router calls `complete` (a whole response) or `open_stream` (an SSE stream read event
by event). Around the adapter's pure translation functions this module owns the I/O: the
session, the key lookup, timeouts (per attempt until the response starts, idle time
between stream reads, and the whole-request deadline), and the mapping of aiohttp's
exceptions to the gateway's error types, which happens in `map_client_error` and nowhere
else. It never swallows `CancelledError` (a client disconnect must cancel the upstream)
and always closes the upstream response.

Deadlines are event-loop times (`loop.time()`), passed in by the router.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp

from switchyard_gateway import errors
from switchyard_gateway.config.compiled import CompiledEndpoint, CompiledTarget
from switchyard_gateway.credentials import ApiKey
from switchyard_gateway.providers.base import (
    Adapter,
    ParsedResponse,
    StreamEvent,
    StreamTranslator,
    UpstreamRequest,
    Usage,
)
from switchyard_gateway.routing.deadlines import Deadlines
from switchyard_gateway.routing.proxies import EnvProxies
from switchyard_gateway.secrets import Credentials
from switchyard_schema import Provider

AdapterLookup = Callable[[Provider], Adapter]


def make_session(limit_per_host: int = 1000,
                 connect_timeout: float = 10.0) -> aiohttp.ClientSession:
    """The process's one upstream session: large pool, proxies from env, TLS verified.

    No pool-wide limit (`limit=0`): many long streams to one provider must not queue
    behind each other; the per-host limit is a guard rail. HTTPS_PROXY/NO_PROXY are
    honoured by `AttemptRunner` through `proxies.EnvProxies` (read once), not by
    `trust_env`, which re-reads the environment and ~/.netrc on every request. Timeouts
    are applied per attempt by this module, not here, except the connect bound.
    """
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=limit_per_host, ssl=ssl.create_default_context(),
        enable_cleanup_closed=True, keepalive_timeout=30,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        auto_decompress=True,
    )


def map_client_error(exc: BaseException, target: str) -> errors.UpstreamError:
    """The one translation of aiohttp/asyncio failures into the gateway's error types."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return errors.UpstreamTimeout("no response from the provider in time", target=target)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return errors.UpstreamConnectionError(
            f"cannot connect to {exc.host}:{exc.port}: {type(exc.os_error).__name__}",
            target=target)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return errors.UpstreamConnectionError("the provider closed the connection", target=target)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return errors.UpstreamConnectionError("the response body was cut off", target=target)
    return errors.UpstreamConnectionError(
        f"connection failed: {type(exc).__name__}", target=target)


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """What an attempt needs besides the target: the body and the request's context."""

    endpoint: CompiledEndpoint
    body: dict[str, Any]
    request_id: str


class UpstreamStream:
    """An open upstream SSE response, read one OpenAI-format event at a time."""

    def __init__(self, response: aiohttp.ClientResponse, translator: StreamTranslator,
                 target: CompiledTarget, idle_timeout: float,
                 key: ApiKey | None = None, deadlines: Deadlines | None = None) -> None:
        self._response = response
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
        return self._pending.popleft()

    def ready(self) -> list[StreamEvent]:
        """The events already decoded and waiting (no I/O), taken from the queue."""
        if not self._pending:
            return []
        events = list(self._pending)
        self._pending.clear()
        return events

    async def _read(self, deadline: float) -> bytes:
        content = self._response.content
        try:
            if content._buffer:  # already here: no deadline to arm
                return await content.readany()
            loop = asyncio.get_running_loop()
            with self._deadlines.at(min(deadline, loop.time() + self._idle)):
                return await content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise map_client_error(exc, self._target.name) from exc

    def close(self) -> None:
        """Release the connection (complete stream) or abort it (anything else)."""
        if self._finished:
            self._response.release()
        else:
            self._response.close()


class AttemptRunner:
    """Sends attempts. Holds the session, the adapter lookup and the credentials."""

    def __init__(self, session: aiohttp.ClientSession, adapters: AdapterLookup,
                 credentials: Credentials) -> None:
        self._session = session
        self._adapters = adapters
        self._credentials = credentials
        self._proxies = EnvProxies()
        self._deadlines = Deadlines()

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
                async with self._send(request, call) as response:
                    raw = await response.read()
                    status, headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise map_client_error(exc, target.name) from exc
        if not 200 <= status < 300:
            raise _redacted(_tagged(adapter.map_error(target, status, headers, raw), target), key)
        try:
            return adapter.parse_response(target, call.endpoint.task, raw)
        except errors.UpstreamError as exc:
            raise _redacted(_tagged(exc, target), key) from None

    async def open_stream(self, call: Call, target: CompiledTarget,
                          deadline: float) -> UpstreamStream:
        """Send a streaming attempt and return once the response headers are in."""
        request, key = self._prepare(call, target, stream=True)
        adapter = self._adapters(target.provider)
        response: aiohttp.ClientResponse | None = None
        try:
            with self._deadlines.at(deadline):
                response = await self._send(request, call)
                if not 200 <= response.status < 300:
                    raw = await response.read()
                    raise _redacted(_tagged(
                        adapter.map_error(target, response.status, response.headers, raw),
                        target), key)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if response is not None:
                response.close()
            raise map_client_error(exc, target.name) from exc
        except BaseException:
            if response is not None:
                response.close()
            raise
        translator = adapter.stream_translator(target, call.endpoint.task)
        return UpstreamStream(response, translator, target,
                              call.endpoint.policy.stream_idle_timeout, key, self._deadlines)

    def _send(self, request: UpstreamRequest, call: Call) -> Any:
        headers = {**request.headers, "x-request-id": call.request_id}
        proxy, proxy_auth = self._proxies.for_url(request.url)
        return self._session.request(request.method, request.url, headers=headers,
                                     data=request.body, allow_redirects=False,
                                     proxy=proxy, proxy_auth=proxy_auth)


def _tagged(exc: errors.UpstreamError, target: CompiledTarget) -> errors.UpstreamError:
    exc.target = exc.target or target.name
    return exc


def _redacted(exc: errors.UpstreamError, key: ApiKey | None) -> errors.UpstreamError:
    """Cut the attempt's key out of an upstream message: some providers echo the key they
    were sent (a misconfigured proxy, a debug endpoint), and caller faults pass the
    provider's message through to the caller."""
    secret = key.reveal() if key is not None else ""
    if len(secret) >= 4 and secret in exc.message:
        exc.message = exc.message.replace(secret, "[REDACTED]")
        exc.args = (exc.message,)
    return exc
