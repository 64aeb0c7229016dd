"""Requests to origins behind an outbound proxy (HTTPS_PROXY and friends), via aiohttp.

The lean pool speaks to origins directly; CONNECT tunnels and proxy authentication are
left to aiohttp, which does them well. This module wraps aiohttp's response in the same
surface as `response.Response` and turns aiohttp's exceptions into the transport's own,
with the same classification as the direct path (a connect timeout is a `ConnectError`
on both), so the router sees one kind of response and one error tree whichever path was
taken. It applies the same limits: aiohttp's header line caps plus the total, the body
limit on `read`, and its own bounded inflating (aiohttp's decompression is turned off).
Only public aiohttp API is used.

The address policy can only see the URL here (the proxy resolves the name): an IP
literal the policy refuses is refused before anything is sent.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import aiohttp
from aiohttp import http_exceptions
from multidict import CIMultiDictProxy
from yarl import URL

from switchyard_gateway.transport import addresses
from switchyard_gateway.transport.errors import (
    AddressRefused,
    BodyCutOff,
    ConnectError,
    ConnectionClosed,
    LimitExceeded,
    ProtocolError,
    TransportError,
)
from switchyard_gateway.transport.events import NullObserver, Observer
from switchyard_gateway.transport.inflate import Inflater, inflater_for
from switchyard_gateway.transport.limits import Limits
from switchyard_gateway.transport.proxies import EnvProxies

#: aiohttp's own cap on one header line (its default); our total is checked on top.
_AIOHTTP_FIELD = 8190


def _transport_error(exc: aiohttp.ClientError, proxy: URL | None,
                     limits: Limits) -> TransportError:
    """aiohttp's exception as the transport's (same kinds as the direct path)."""
    host, port = (proxy.host or "", proxy.port or 0) if proxy is not None else ("", 0)
    if isinstance(exc, aiohttp.ServerTimeoutError):  # connect timeout (sock_read unset)
        return ConnectError(host, port, TimeoutError())
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS
        return ConnectError(exc.host, exc.port or 0, exc.os_error)
    if isinstance(exc, aiohttp.ClientConnectionError):  # disconnected, reset, OS error
        return ConnectionClosed("the server closed the connection")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return BodyCutOff("the server closed the connection mid-body")
    if isinstance(exc, aiohttp.ClientResponseError):
        if isinstance(exc.__cause__, http_exceptions.LineTooLong):
            return LimitExceeded("headers", limits.header_bytes)
        return ProtocolError("invalid HTTP response")
    return TransportError(f"connection failed: {type(exc).__name__}")


class ProxiedResponse:
    """aiohttp's response behind the `Response` surface."""

    __slots__ = ("_error", "_inflater", "_limits", "_observer", "_proxy", "_response")

    def __init__(self, response: aiohttp.ClientResponse, limits: Limits,
                 proxy: URL | None, observer: Observer) -> None:
        self._response = response
        self._limits = limits
        self._observer = observer
        self._proxy = proxy
        self._error: TransportError | None = None
        self._inflater: Inflater | None = inflater_for(
            response.headers.get("Content-Encoding", ""), limits.decompressed_bytes)

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
        """True when `read_chunk` would return without waiting (conservatively: only at
        the end; aiohttp offers no public view of its buffer)."""
        return self._response.content.at_eof()

    async def read_chunk(self) -> bytes:
        """Whatever has arrived (at least one byte), b"" at the end."""
        inflater = self._inflater
        try:
            if inflater is None:
                return await self._response.content.readany()
            while True:
                if inflater.pending:
                    data = inflater.step(b"")
                else:
                    raw = await self._response.content.readany()
                    if not raw:
                        return inflater.finish()
                    data = inflater.step(raw)
                if data:
                    return data
        except aiohttp.ClientError as exc:
            raise self._fail(_transport_error(exc, self._proxy, self._limits)) from exc
        except TransportError as exc:
            raise self._fail(exc) from None

    async def read(self) -> bytes:
        """The whole body, at most `limits.body_bytes` of it (else `LimitExceeded`)."""
        limit = self._limits.body_bytes
        parts: list[bytes] = []
        total = 0
        while chunk := await self.read_chunk():
            total += len(chunk)
            if total > limit:
                parts.clear()
                raise self._fail(LimitExceeded("body", limit))
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        """Connection back to aiohttp's pool (or closed if the body was not read)."""
        if self._error is not None:
            self._response.close()
        else:
            self._response.release()

    def close(self) -> None:
        """Drop the connection."""
        self._response.close()

    def _fail(self, error: TransportError) -> TransportError:
        if isinstance(error, LimitExceeded) and self._error is None:
            self._observer.limit_exceeded(error.limit)
        self._error = error
        self._response.close()
        return error


class ProxiedClient:
    """The aiohttp session for proxied origins, opened on first use."""

    def __init__(self, proxies: EnvProxies, ssl_context: ssl.SSLContext,
                 connect_timeout: float, limits: Limits | None = None,
                 observer: Observer | None = None) -> None:
        self._proxies = proxies
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._limits = limits or Limits()
        self._observer: Observer = observer or NullObserver()
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> ProxiedResponse:
        """Send through the proxy the environment names for `url`.

        Raises the transport's errors (`AddressRefused` for a refused IP literal).
        """
        parsed = URL(url)
        if parsed.host is not None and addresses.refused(parsed.host):
            self._observer.address_refused()
            raise AddressRefused(parsed.host, parsed.port or 0, parsed.host)
        field = min(_AIOHTTP_FIELD, self._limits.header_bytes)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=self._ssl),
                trust_env=False, auto_decompress=False,
                max_line_size=field, max_field_size=field,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout))
        proxy, proxy_auth = self._proxies.for_url(url)
        try:
            response = await self._session.request(
                method, parsed, headers=headers, data=body, allow_redirects=False,
                proxy=proxy, proxy_auth=proxy_auth)
        except aiohttp.ClientError as exc:
            error = _transport_error(exc, proxy, self._limits)
            if isinstance(error, LimitExceeded):
                self._observer.limit_exceeded(error.limit)
            raise error from exc
        size = sum(len(k) + len(v) + 4 for k, v in response.raw_headers)
        try:
            if size > self._limits.header_bytes:
                self._observer.limit_exceeded("headers")
                raise LimitExceeded("headers", self._limits.header_bytes)
            return ProxiedResponse(response, self._limits, proxy, self._observer)
        except TransportError:
            response.close()
            raise

    async def close(self) -> None:
        """Close the session, if one was opened."""
        if self._session is not None:
            await self._session.close()
