"""The transport's front door: direct origins through the pool, proxied ones via aiohttp."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Protocol

from multidict import CIMultiDictProxy

from switchyard_gateway.transport.pool import Pool
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


class Client:
    """One per process: sends each request directly or through the environment's proxy."""

    def __init__(self, *, connect_timeout: float = 10.0, keepalive_timeout: float = 30.0,
                 limit_per_host: int = 1000) -> None:
        context = ssl.create_default_context()
        self._proxies = EnvProxies()
        self.pool = Pool(ssl_context=context, connect_timeout=connect_timeout,
                         keepalive_timeout=keepalive_timeout, limit_per_host=limit_per_host)
        self._proxied = ProxiedClient(self._proxies, context, connect_timeout)

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
