"""Connection settings, JSON requests and watch streams over aiohttp.

Callers: the operator's `apply.py` and `lease.py` (its only modules that talk to the API
server), the gateway's in-cluster config source (directly and through `reflector.py`), and
the CLI, which loads the connection once (`load`). Paths come only from
`paths.collection_path`/`object_path` (typed `ResourcePath`) and are sent without
re-quoting; the query and the body are keyword-only. It maps HTTP statuses to a small error
tree in one place and never puts a response body longer than a short cut-off into an
exception (a Secret's body must never reach a log). Tokens are re-read from their file on
every request, as projected ServiceAccount tokens rotate.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from yarl import URL

from switchyard_kube.paths import InvalidPathSegment, ResourcePath

_SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
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
    certificate_data: bytes | None = None
    private_key_data: bytes | None = None
    default_namespace: str = "default"

    def bearer(self) -> str | None:
        """The bearer token, re-read from its file when it has one (projected tokens rotate)."""
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


def _read_data(entry: dict[str, Any], key: str, base_dir: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base_dir / str(entry[key])).read_bytes()
    return None


def load_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> Connection:
    """Read one context of a kubeconfig file (token or client-certificate auth).

    Raises `ValueError` when the file lacks the context, cluster or user it names.
    """
    file = Path(path).expanduser()
    config = yaml.safe_load(file.read_text("utf-8")) or {}
    name = context or config.get("current-context")
    contexts = {c["name"]: c.get("context") or {} for c in config.get("contexts", [])}
    clusters = {c["name"]: c.get("cluster") or {} for c in config.get("clusters", [])}
    users = {u["name"]: u.get("user") or {} for u in config.get("users", [])}
    if name not in contexts:
        raise ValueError(f"{file}: no context {name!r}")
    ctx = contexts[name]
    cluster = clusters.get(ctx.get("cluster"))
    if cluster is None:
        raise ValueError(f"{file}: context {name!r} names no known cluster")
    user = users.get(ctx.get("user"), {})
    base = file.parent
    token_file = user.get("tokenFile")
    return Connection(
        server=str(cluster["server"]).rstrip("/"),
        ca_data=_read_data(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        token=user.get("token"),
        token_path=str(base / token_file) if token_file else None,
        certificate_data=_read_data(user, "client-certificate", base),
        private_key_data=_read_data(user, "client-key", base),
        default_namespace=ctx.get("namespace") or "default",
    )


def load_in_cluster() -> Connection:
    """The pod's ServiceAccount credentials. Raises `ValueError` outside a cluster."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not (_SA_DIR / "token").exists():
        raise ValueError("not running in a cluster (no service host or ServiceAccount token)")
    host = f"[{host}]" if ":" in host else host
    return Connection(
        server=f"https://{host}:{port}",
        ca_data=(_SA_DIR / "ca.crt").read_bytes(),
        token_path=str(_SA_DIR / "token"),
        default_namespace=(_SA_DIR / "namespace").read_text("utf-8").strip(),
    )


def load(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """An explicit kubeconfig, else in-cluster credentials, else ~/.kube/config.

    The KUBECONFIG environment variable is deliberately ignored: a process started by a
    test must never reach whatever cluster the developer's shell points at. Raises
    `ValueError` when none of the three is available.
    """
    if kubeconfig:
        return load_kubeconfig(kubeconfig, context)
    try:
        return load_in_cluster()
    except ValueError:
        home = Path("~/.kube/config").expanduser()
        if not home.is_file():
            raise ValueError(
                "not in a cluster, no --kubeconfig given and no ~/.kube/config"
            ) from None
        return load_kubeconfig(home, context)


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

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        token = self.conn.bearer()
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
        headers = self._headers(accept)
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
        headers = self._headers("application/json")
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
