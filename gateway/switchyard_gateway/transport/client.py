"""The transport's front door: direct origins through the pool, proxied ones via aiohttp.

`Transport` is the surface the attempt runner uses (`routing/attempts.py`); `Client` is
the one over sockets, and the test kit's `MemoryTransport` the one without (as httpx's
`BaseTransport` and `MockTransport`), so the router's fallback walk is tested in memory.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Protocol

from multidict import CIMultiDictProxy

from switchyard_gateway.transport.events import NullObserver, Observer
from switchyard_gateway.transport.limits import (
    CAPACITY_WAIT_SECONDS,
    CONNECTIONS_PER_ORIGIN,
    KEEPALIVE_SECONDS,
    STREAMS_PER_ORIGIN,
    Limits,
)
from switchyard_gateway.transport.pool import Pool, Resolver
from switchyard_gateway.transport.proxied import ProxiedClient
from switchyard_gateway.transport.proxies import EnvProxies


class UpstreamResponse(Protocol):
    """What the router reads from: `response.Response` or `proxied.ProxiedResponse`."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...

    @property
    def has_data(self) -> bool: ...

    async def read_chunk(self) -> bytes: ...

    async def read(self) -> bytes: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Sends one request and returns once the response headers are in.

    Raises the `errors` types (a `TransportError`; `Overloaded` when the origin has no
    capacity left) or `TimeoutError`; never an upstream status as an exception: a 4xx/5xx
    is a response like any other.
    """

    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class Client:
    """One per process: sends each request directly or through the environment's proxy."""

    def __init__(self, *, connect_timeout: float = 10.0,
                 keepalive_timeout: float = KEEPALIVE_SECONDS,
                 limit_per_host: int = CONNECTIONS_PER_ORIGIN,
                 capacity_wait: float = CAPACITY_WAIT_SECONDS,
                 streams_per_origin: int = STREAMS_PER_ORIGIN, limits: Limits | None = None,
                 observer: Observer | None = None,
                 resolver: Resolver | None = None) -> None:
        context = ssl.create_default_context()  # the pool offers h2 by ALPN on it
        limits = limits or Limits()
        observer = observer or NullObserver()
        self._proxies = EnvProxies()
        self.pool = Pool(ssl_context=context, connect_timeout=connect_timeout,
                         keepalive_timeout=keepalive_timeout, limit_per_host=limit_per_host,
                         capacity_wait=capacity_wait, streams_per_origin=streams_per_origin,
                         limits=limits, resolver=resolver, observer=observer)
        # aiohttp speaks HTTP/1.1 only: its own context, which offers no ALPN
        self._proxied = ProxiedClient(self._proxies, ssl.create_default_context(),
                                      connect_timeout, limits,
                                      observer)

    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> UpstreamResponse:
        """Send one request; return once the response headers are in."""
        if self._proxies.for_url(url)[0] is not None:
            return await self._proxied.request(method, url, headers, body)
        return await self.pool.request(method, url, headers, body)

    async def close(self) -> None:
        """Close idle connections and the proxy session."""
        self.pool.close()
        await self._proxied.close()
