"""Requests to origins behind an outbound proxy (HTTPS_PROXY and friends), via aiohttp.

The lean pool speaks to origins directly; CONNECT tunnels and proxy authentication are
left to aiohttp, which does them well. This module wraps aiohttp's response in the same
surface as `response.Response` and turns aiohttp's exceptions into the transport's own,
so the router sees one kind of response and one error tree whichever path was taken.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDictProxy

from switchyard_gateway.transport.errors import (
    BodyCutOff,
    ConnectError,
    ConnectionClosed,
    TransportError,
)
from switchyard_gateway.transport.proxies import EnvProxies


def _transport_error(exc: aiohttp.ClientError) -> TransportError | TimeoutError:
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return TimeoutError()
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(exc.host, exc.port or 0, exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ConnectionClosed("the server closed the connection")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return BodyCutOff("the server closed the connection mid-body")
    return TransportError(f"connection failed: {type(exc).__name__}")


class ProxiedResponse:
    """aiohttp's response behind the `Response` surface."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The response headers."""
        return self._response.headers

    @property
    def has_data(self) -> bool:
        """True when `read_chunk` would return without waiting."""
        content = self._response.content
        return bool(content._buffer) or content.at_eof()

    async def read_chunk(self) -> bytes:
        """Whatever has arrived (at least one byte), b"" at the end."""
        try:
            return await self._response.content.readany()
        except aiohttp.ClientError as exc:
            raise _transport_error(exc) from exc

    async def read(self) -> bytes:
        """The whole body."""
        try:
            return await self._response.read()
        except aiohttp.ClientError as exc:
            raise _transport_error(exc) from exc

    def release(self) -> None:
        """Connection back to aiohttp's pool (or closed if the body was not read)."""
        self._response.release()

    def close(self) -> None:
        """Drop the connection."""
        self._response.close()


class ProxiedClient:
    """The aiohttp session for proxied origins, opened on first use."""

    def __init__(self, proxies: EnvProxies, ssl_context: ssl.SSLContext,
                 connect_timeout: float) -> None:
        self._proxies = proxies
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> ProxiedResponse:
        """Send through the proxy the environment names for `url`."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=self._ssl),
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout))
        proxy, proxy_auth = self._proxies.for_url(url)
        try:
            response = await self._session.request(
                method, url, headers=headers, data=body, allow_redirects=False,
                proxy=proxy, proxy_auth=proxy_auth)
        except aiohttp.ClientError as exc:
            raise _transport_error(exc) from exc
        return ProxiedResponse(response)

    async def close(self) -> None:
        """Close the session, if one was opened."""
        if self._session is not None:
            await self._session.close()
