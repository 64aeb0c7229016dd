"""The API server's answers about a caller: TokenReview and SubjectAccessReview.

`KubeReviewer` posts `authentication.k8s.io/v1` TokenReviews (with the gateway's audience in
`spec.audiences`) and `authorization.k8s.io/v1` SubjectAccessReviews (verb `use` on
`gatewayendpoints.switchyard.dev`, the endpoint's namespace and name) through the project's
async client. Called by `guard.py` only, which caches the answers. Must not: put the token in
an exception, a log line or a cache key; treat an unreachable API server as a "no" (that is
`ReviewUnavailable`, so the guard can fall back on stale answers or answer 503).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from switchyard_gateway.identity.claims import Caller
from switchyard_kube import client as kube
from switchyard_kube import paths

#: The RBAC the gateway asks about: `kubectl auth can-i use gatewayendpoints/NAME -n NS`.
VERB = "use"
GROUP = "switchyard.dev"
RESOURCE = "gatewayendpoints"

_TOKEN_REVIEWS = paths.collection_path("authentication.k8s.io/v1", "tokenreviews")
_ACCESS_REVIEWS = paths.collection_path("authorization.k8s.io/v1", "subjectaccessreviews")


class Unauthenticated(Exception):
    """The token is not one the gateway accepts; the message says why, never the token."""


class ReviewUnavailable(Exception):
    """The API server could not answer (unreachable, timed out, 5xx, 429)."""


class Reviewer(Protocol):
    """What the guard needs from the API server (a fake in unit tests)."""

    async def review_token(self, token: str) -> Caller:
        """The caller a token belongs to. Raises Unauthenticated or ReviewUnavailable."""
        ...

    async def may_use(self, caller: Caller, namespace: str, name: str) -> bool:
        """Whether RBAC lets `caller` use the endpoint. Raises ReviewUnavailable."""
        ...


class KubeReviewer:
    """Reviews through one `switchyard_kube` client (entered by the caller)."""

    def __init__(self, client: kube.Client, audience: str, timeout: float = 5.0) -> None:
        self.client = client
        self.audience = audience
        self.timeout = timeout

    async def _create(self, path: paths.ResourcePath, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.timeout):
                reply = await self.client.request("POST", path, body=body)
        except (kube.Transient, TimeoutError) as exc:
            raise ReviewUnavailable(f"the API server did not answer ({type(exc).__name__})") \
                from None
        except kube.ApiError as exc:  # 401/403: the gateway's own RBAC is missing
            raise ReviewUnavailable(f"the API server refused the review ({exc.status})") \
                from None
        return reply if isinstance(reply, dict) else {}

    async def review_token(self, token: str) -> Caller:
        """TokenReview of `token` for the gateway's audience."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": token, "audiences": [self.audience]}}
        status = (await self._create(_TOKEN_REVIEWS, body)).get("status") or {}
        if not status.get("authenticated"):
            raise Unauthenticated("the token is not a valid ServiceAccount token for "
                                  f"audience {self.audience!r} (invalid, expired or revoked)")
        # A server that ignores spec.audiences answers with its own: refuse rather than trust.
        if self.audience not in (status.get("audiences") or []):
            raise Unauthenticated(f"the token is not meant for audience {self.audience!r}")
        return caller_of(status.get("user") or {})

    async def may_use(self, caller: Caller, namespace: str, name: str) -> bool:
        """SubjectAccessReview: may `caller` `use` gatewayendpoints/`name` in `namespace`?"""
        spec: dict[str, Any] = {
            "user": caller.username, "groups": list(caller.groups),
            "resourceAttributes": {"namespace": namespace, "verb": VERB, "group": GROUP,
                                   "resource": RESOURCE, "name": name}}
        if caller.uid:
            spec["uid"] = caller.uid
        if caller.extra:
            spec["extra"] = {k: list(v) for k, v in caller.extra}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": spec}
        status = (await self._create(_ACCESS_REVIEWS, body)).get("status") or {}
        return bool(status.get("allowed")) and not status.get("denied")


def caller_of(user: dict[str, Any]) -> Caller:
    """A `Caller` from a TokenReview's `status.user`."""
    extra = user.get("extra") or {}
    pairs = tuple(sorted((str(k), tuple(str(v) for v in values))
                         for k, values in extra.items() if isinstance(values, list)))
    return Caller(username=str(user.get("username", "")), uid=str(user.get("uid", "")),
                  groups=tuple(str(g) for g in user.get("groups") or ()), extra=pairs)
