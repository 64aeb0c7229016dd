"""Inbound authentication: bearer tokens from a file (`switchyard gateway --auth-tokens-file`).

When the flag is set, every API route except the probes and the API description
(`/healthz`, `/readyz`, `/openapi.yaml`) needs `Authorization: Bearer <token>` with one of
the file's tokens (one per line; blank lines and `#` comments ignored). A missing or wrong
token is a 401 `Unauthorized`, rendered by the error middleware like every other error.

The file is a mounted Secret in a cluster, so it is re-read when its content changes (a
background poll, never a file read on the request path). A file that cannot be read at
start stops the gateway; one that breaks later keeps the last good tokens. A file with no
tokens refuses every caller (fail closed). With `--auth kubernetes` too, `kube_auth.py`
checks the file's tokens first and takes over the rest.

Comparison is constant-time: the presented token and every known token are hashed to the
same length and all of them are compared with `hmac.compare_digest`, without an early
exit, so response time says nothing about how much of a token was right. Tokens never
appear in logs or error bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import pathlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from switchyard_gateway import errors

log = logging.getLogger(__name__)

#: Paths anyone may call: the probes and the API description. (`/metrics` and `/ui` are
#: not on the API port at all: `admin.py`.)
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/openapi.yaml"})


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def parse_tokens(text: str) -> frozenset[bytes]:
    """The SHA-256 digests of the tokens in a tokens file's text."""
    tokens = (line.strip() for line in text.splitlines())
    return frozenset(_digest(t) for t in tokens if t and not t.startswith("#"))


class TokenFile:
    """The accepted tokens (as digests), kept in step with a file."""

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self._raw: bytes | None = None
        self._digests: frozenset[bytes] = frozenset()

    def load(self) -> bool:
        """Read the file now; True if its content changed. Raises OSError if unreadable."""
        raw = self.path.read_bytes()
        if raw == self._raw:
            return False
        self._digests = parse_tokens(raw.decode("utf-8", "replace"))
        self._raw = raw
        log.info("inbound auth: %d token(s) loaded from %s", len(self._digests), self.path)
        return True

    async def watch(self, interval: float) -> None:
        """Re-read the file every `interval` seconds; keep the last good tokens on errors."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.load)
            except OSError as exc:
                log.warning("inbound auth: cannot read %s (%s); keeping the last tokens",
                            self.path, type(exc).__name__)

    def accepts(self, token: str) -> bool:
        """True if `token` is one of the file's tokens; constant time in the token."""
        presented = _digest(token)
        found = False
        for known in self._digests:
            found |= hmac.compare_digest(presented, known)
        return found


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def middleware(tokens: TokenFile) -> Middleware:
    """The aiohttp middleware that enforces `tokens` (placed inside the error middleware)."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in EXEMPT_PATHS:
            return await handler(request)
        token = bearer_token(request)
        if token is None:
            raise errors.Unauthorized(
                "this gateway requires 'Authorization: Bearer <token>' (inbound auth is on)")
        if not tokens.accepts(token):
            raise errors.Unauthorized("the bearer token is not valid for this gateway")
        return await handler(request)

    return authenticate


def watching(tokens: TokenFile, interval: float) -> Callable[
        [web.Application], AsyncIterator[None]]:
    """A `cleanup_ctx` entry that keeps `tokens` in step with its file while the app runs."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(tokens.watch(interval), name="auth-tokens-watch")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return context
