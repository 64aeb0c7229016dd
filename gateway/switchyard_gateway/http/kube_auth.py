"""Inbound auth with Kubernetes identities (`switchyard gateway --auth kubernetes`).

The caller's bearer (its OpenAI API key) is a projected ServiceAccount token for the
gateway's audience. Every API request is authenticated here through the app's
`identity.Guard` (TokenReview, cached); the caller is kept on the request (`CALLER`) for
`access.py`, which authorizes each endpoint use (SubjectAccessReview, cached). With
`--auth-tokens-file` as well, a token from that file is accepted first, as an unrestricted
caller (the gateway-wide key it always was).

401 for a missing, malformed, expired, revoked or wrong-audience token; 503 with
Retry-After when the API server cannot review an unknown token (fail closed). The probes
and `/openapi.yaml` need no token; `/metrics` and `/ui` are on the admin port (`admin.py`).
The request's caller namespace (a bounded label, `caller_label`) goes on its trace for the
per-namespace request count. Must not: put a token in a log line, an error or a label.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from switchyard_gateway import errors
from switchyard_gateway.http.auth import EXEMPT_PATHS, TokenFile, bearer_token
from switchyard_gateway.http.state import CALLER, TRACE
from switchyard_gateway.identity import Caller, Guard, ReviewUnavailable, Unauthenticated

log = logging.getLogger(__name__)

#: The caller of a `--auth-tokens-file` token: allowed every endpoint.
TOKEN_FILE_CALLER = Caller(username="switchyard:auth-tokens-file", unrestricted=True)
#: Distinct caller namespaces counted before the rest are counted as `other`.
MAX_CALLER_NAMESPACES = 500
#: Label of a request with no authenticated Kubernetes caller (refused, or a file token).
NO_CALLER = "none"
#: Label of an authenticated caller that is not a ServiceAccount (or past the bound).
OTHER_CALLER = "other"
#: While the API server is unreachable every new caller fails the same way: one warning
#: per this many seconds, not one per request.
WARN_EVERY = 10.0


class CallerLabels:
    """The bounded `caller_namespace` label: a namespace, `other` or `none`."""

    def __init__(self, limit: int = MAX_CALLER_NAMESPACES) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, caller: Caller) -> str:
        namespace = caller.namespace
        if namespace is None:
            return NO_CALLER if caller.unrestricted else OTHER_CALLER
        if namespace in self._seen:
            return namespace
        if len(self._seen) >= self.limit:
            return OTHER_CALLER
        self._seen.add(namespace)
        return namespace


def middleware(guard: Guard, tokens: TokenFile | None = None) -> Middleware:
    """The middleware enforcing `guard` (placed inside the error middleware)."""
    labels = CallerLabels()
    warned = [-WARN_EVERY]

    def warn(exc: ReviewUnavailable) -> None:
        now = time.monotonic()
        if now - warned[0] >= WARN_EVERY:
            warned[0] = now
            log.warning("caller identity: cannot review new callers (503 until the API "
                        "server answers; repeats are not logged for %.0fs): %s",
                        WARN_EVERY, exc)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in EXEMPT_PATHS:
            return await handler(request)
        trace = request[TRACE]
        trace.caller_namespace = NO_CALLER
        token = bearer_token(request)
        if token is None:
            raise errors.Unauthorized(
                "this gateway requires 'Authorization: Bearer <ServiceAccount token>' "
                f"(a projected token for audience {guard.settings.audience!r})")
        caller = guard.known(token)  # the cached path: no await
        if caller is not None:
            pass
        elif tokens is not None and tokens.accepts(token):
            caller = TOKEN_FILE_CALLER
        else:
            try:
                caller = await guard.authenticate(token)
            except Unauthenticated as exc:
                raise errors.Unauthorized(str(exc)) from None
            except ReviewUnavailable as exc:
                warn(exc)
                raise errors.AuthUnavailable(
                    "the gateway cannot verify callers right now; retry later") from None
        request[CALLER] = caller
        trace.caller_namespace = labels(caller)
        return await handler(request)

    return authenticate
