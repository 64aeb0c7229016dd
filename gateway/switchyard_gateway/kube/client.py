"""Connection to the Kubernetes API server: kubeconfig or in-cluster credentials.

Called by the cluster config source (`config/cluster.py`). Raises `KubeError` (with the
HTTP status) for API errors; `Gone` for 410, which tells a watch to relist. The bearer
token is re-read from the in-cluster file on each request, as ServiceAccount tokens are
rotated on disk. Credentials never reach a log line or an exception text.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import pathlib
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import yaml

IN_CLUSTER = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: Cut of an API error body kept in exception texts: enough for the reason.
_BODY_CUT = 256


class KubeError(Exception):
    """The API server answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message[:_BODY_CUT]}")
        self.status = status


class Gone(KubeError):
    """410 Gone: the resourceVersion is too old; list again."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to authenticate (never printed)."""

    server: str
    ssl_context: ssl.SSLContext | bool
    token: str | None = dataclasses.field(default=None, repr=False)
    token_file: pathlib.Path | None = None
    namespace: str = "default"

    def auth_header(self) -> dict[str, str]:
        """The Authorization header, re-reading a token file each time (rotation)."""
        token = self.token
        if self.token_file is not None:
            token = self.token_file.read_text().strip()
        return {"Authorization": f"Bearer {token}"} if token else {}


def _materialise(data_b64: str | None, path: str | None, suffix: str) -> str | None:
    """A file path for kubeconfig's `*-data` fields (ssl wants files for certs)."""
    if path:
        return path
    if not data_b64:
        return None
    handle = tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False)  # noqa: SIM115
    with handle:
        handle.write(base64.b64decode(data_b64))
    os.chmod(handle.name, 0o600)
    return handle.name


def from_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> Credentials:
    """Load the current (or named) context of a kubeconfig file.

    Supports bearer tokens, client certificates and CA data or files; not exec plugins.
    """
    config = yaml.safe_load(pathlib.Path(path).read_text())
    name = context or config.get("current-context")
    contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
    if name not in contexts:
        raise KubeError(0, f"kubeconfig {path}: context {name!r} not found")
    ctx = contexts[name]
    cluster = {c["name"]: c["cluster"] for c in config.get("clusters", [])}[ctx["cluster"]]
    user = {u["name"]: u["user"] for u in config.get("users", [])}.get(ctx.get("user"), {})
    server = str(cluster["server"]).rstrip("/")
    ssl_ctx: ssl.SSLContext | bool = True
    if server.startswith("https"):
        if cluster.get("insecure-skip-tls-verify"):
            ssl_ctx = False
        else:
            ca = _materialise(
                cluster.get("certificate-authority-data"),
                cluster.get("certificate-authority"),
                ".crt",
            )
            ssl_ctx = ssl.create_default_context(cafile=ca)
            cert = _materialise(
                user.get("client-certificate-data"), user.get("client-certificate"), ".crt"
            )
            key = _materialise(user.get("client-key-data"), user.get("client-key"), ".key")
            if cert and key:
                ssl_ctx.load_cert_chain(cert, key)
    token_file = pathlib.Path(user["tokenFile"]) if user.get("tokenFile") else None
    return Credentials(
        server, ssl_ctx, user.get("token"), token_file, ctx.get("namespace", "default")
    )


def in_cluster() -> Credentials:
    """The pod's ServiceAccount credentials (KUBERNETES_SERVICE_HOST/PORT)."""
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    ssl_ctx = ssl.create_default_context(cafile=str(IN_CLUSTER / "ca.crt"))
    namespace = (IN_CLUSTER / "namespace").read_text().strip()
    return Credentials(f"https://{host}:{port}", ssl_ctx, None, IN_CLUSTER / "token", namespace)


def load(kubeconfig: str | None) -> Credentials:
    """An explicit kubeconfig, else in-cluster credentials. Never an ambient KUBECONFIG."""
    if kubeconfig:
        return from_kubeconfig(kubeconfig)
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        return in_cluster()
    raise KubeError(0, "not in a cluster and no --kubeconfig given")


class KubeClient:
    """JSON requests and watch streams against one API server, on one aiohttp session."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        connector = aiohttp.TCPConnector(ssl=self.credentials.ssl_context, limit=32)
        self._session = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("KubeClient used outside `async with`")
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        request_timeout: float = 30.0,
    ) -> Any:
        """One API call; returns the decoded JSON. Raises `KubeError` / `Gone`."""
        url = self.credentials.server + path
        try:
            async with self.session.request(
                method,
                url,
                params=params,
                json=body,
                headers=self.credentials.auth_header(),
                timeout=aiohttp.ClientTimeout(total=request_timeout),
            ) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise (Gone if resp.status == 410 else KubeError)(resp.status, text)
                return json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(0, f"{type(exc).__name__} talking to the API server") from exc

    async def watch(
        self, path: str, params: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream watch events (decoded JSON objects) until the server closes the watch."""
        url = self.credentials.server + path
        try:
            async with self.session.get(
                url,
                params={**params, "watch": "true"},
                headers=self.credentials.auth_header(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout),
            ) as resp:
                if resp.status >= 400:
                    text = await resp.text()
                    raise (Gone if resp.status == 410 else KubeError)(resp.status, text)
                async for line in resp.content:
                    if line.strip():
                        yield json.loads(line)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(0, f"{type(exc).__name__} on watch") from exc
