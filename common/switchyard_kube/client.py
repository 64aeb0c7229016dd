"""Connection settings, JSON requests and watch streams over aiohttp.

Callers: the operator's `apply.py` and `lease.py` (its only modules that talk to the API
server), the gateway's in-cluster config source (directly and through `reflector.py`), and
the CLI, which loads the connection once (`login.load`). Paths come only from
`paths.collection_path`/`object_path` (typed `ResourcePath`) and are sent without
re-quoting; the query and the body are keyword-only. It maps HTTP statuses to a small error
tree in one place and never puts a response body longer than a short cut-off into an
exception (a Secret's body must never reach a log). The token is asked of
`Connection.bearer()` on every request, as projected ServiceAccount tokens rotate and
exec-plugin tokens expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from switchyard_kube.paths import InvalidPathSegment, ResourcePath

#: Error bodies are cut here before they reach exceptions and logs.
_BODY_CUTOFF = 256


@dataclasses.dataclass(frozen=True)
class Connection:
    """Where the API server is and how to authenticate to it."""

    server: str
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    token_path: str | None = None
    #: Called for the token on every request when set (see `login`: exec plugins and
    #: in-cluster tokens are fetched again by the official loaders once they expire).
    token_source: Callable[[], str | None] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    certificate_data: bytes | None = None
    private_key_data: bytes | None = None
    default_namespace: str = "default"

    def bearer(self) -> str | None:
        """The bearer token: from its source, else re-read from its file (projected tokens
        rotate), else the fixed one."""
        if self.token_source is not None:
            return self.token_source()
        if self.token_path:
            return Path(self.token_path).read_text("utf-8").strip()
        return self.token


class ApiError(Exception):
    """An API request failed; `status` is the HTTP status (0 for a connection failure)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}: {message[:_BODY_CUTOFF]}")


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409: a stale resourceVersion, or an object that already exists."""


class Transient(ApiError):
    """429, 5xx, or the server could not be reached: worth retrying."""


class Gone(ApiError):
    """410: a watch's resourceVersion, or a LIST's continue token, is too old; list again."""


def _ssl_context(conn: Connection) -> ssl.SSLContext | bool:
    if not conn.server.startswith("https"):
        return False
    ctx = ssl.create_default_context()
    if conn.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif conn.ca_data:
        ctx.load_verify_locations(cadata=conn.ca_data.decode("ascii"))
    if conn.certificate_data and conn.private_key_data:
        # ssl can load a client key pair from files only; the files live for a moment.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert.write_bytes(conn.certificate_data)
            key.write_bytes(conn.private_key_data)
            ctx.load_cert_chain(cert, key)
    return ctx


def _error(status: int, text: str) -> ApiError:
    try:
        body = json.loads(text) if text.lstrip().startswith("{") else {}
    except ValueError:
        body = {}
    reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", text)) if isinstance(body, dict) else text
    if status == 404:
        return NotFound(status, reason or "NotFound", message)
    if status == 409:
        return Conflict(status, reason or "Conflict", message)
    if status == 410:
        return Gone(status, reason or "Expired", message)
    if status == 429 or status >= 500:
        return Transient(status, reason or "ServerError", message)
    return ApiError(status, reason or "Error", message)


class Client:
    """One aiohttp session to one API server; JSON in, JSON out."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(ssl=_ssl_context(self.conn), limit=20)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, path: ResourcePath) -> URL:
        # encoded=True: the path is sent byte for byte as `paths` escaped it;
        # yarl would otherwise decode `%2E%2E` and step up to the parent. The dot check is
        # a second line against a path that did not come from `paths`.
        if not path.startswith("/") or any(s in (".", "..") for s in path.split("/")):
            raise InvalidPathSegment(f"not an API path: {path[:_BODY_CUTOFF]!r}")
        return URL(self.conn.server + path, encoded=True)

    async def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        # In a thread: a token file is disk I/O, and an expired exec-plugin token runs the
        # plugin (a subprocess that may take a second); neither may stall the event loop.
        token = await asyncio.to_thread(self.conn.bearer)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def request(
        self,
        method: str,
        path: ResourcePath,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """Send one request; return the decoded JSON reply.

        Everything after `path` is keyword-only: a query passed where the body goes would
        be silently dropped from a GET (it once was, and every LIST lost its selector).
        Raises `NotFound`, `Conflict`, `Gone`, `Transient` (429, 5xx, unreachable),
        `ApiError`, or `InvalidPathSegment` for a path with a `.`/`..` segment.
        """
        if self._session is None:
            raise RuntimeError("Client used outside `async with`")
        if body is not None and method in ("GET", "DELETE"):
            raise ValueError(f"{method} takes no body (a query goes in `params`)")
        url = self._url(path)
        headers = await self._headers(accept)
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            async with self._session.request(
                method, url, json=body, headers=headers, params=dict(params or {})
            ) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise _error(resp.status, text)
                return await resp.json(content_type=None) if text else None
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise Transient(0, "Unreachable", type(exc).__name__) from exc

    async def watch(
        self, path: ResourcePath, *, params: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream the events of one watch until the server ends it.

        Raises `Gone` (410), `Transient` (unreachable, 5xx, a stalled stream) or `ApiError`.
        """
        if self._session is None:
            raise RuntimeError("Client used outside `async with`")
        url = self._url(path)
        headers = await self._headers("application/json")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        try:
            async with self._session.get(
                url, params={**params, "watch": "true"}, headers=headers, timeout=timeout,
            ) as resp:
                if resp.status >= 400:
                    raise _error(resp.status, await resp.text())
                async for line in resp.content:
                    if line.strip():
                        yield json.loads(line)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Transient(0, "Unreachable", type(exc).__name__) from exc
