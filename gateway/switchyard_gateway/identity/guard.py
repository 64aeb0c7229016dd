"""Who may call which endpoint, asked of the API server once and then cached.

Called by the HTTP layer (`http/kube_auth.py` authenticates every API request, `http/access.py`
authorizes each endpoint use and filters listings). The TTLs (`GuardSettings`, documented in
docs/operations.md "Caller identity"):

- A token review is fresh until `token_margin` seconds before the token's `exp` (never
  longer than `token_ttl`), then stale until that expiry: a token is reviewed again at least
  every `token_ttl`, and never used past its expiry.
- An access decision is fresh for `access_ttl` seconds (5): a deleted RoleBinding takes
  effect within that, plus one review.
- A refused token is remembered for `negative_ttl` seconds (10), so a caller retrying a bad
  token does not cost a review each time.
- While the API server cannot be reached, stale answers are served (a token until its
  expiry, an access decision for `stale_access` more seconds); a caller with none gets
  `ReviewUnavailable` (503, fail closed).

Both caches are LRU-bounded (`max_tokens`, `max_decisions`); concurrent reviews of the same
token (or decision) are one request (single flight), and at most `max_concurrent_reviews` run
at once. Cache keys hold a SHA-256 digest of the token, never the token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from switchyard_gateway.identity import claims
from switchyard_gateway.identity.cache import LruCache, SingleFlight
from switchyard_gateway.identity.claims import Caller
from switchyard_gateway.identity.reviews import Reviewer, ReviewUnavailable, Unauthenticated

#: An access decision's cache key: `Caller.key`, namespace, name.
_Decision = tuple[str, str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class GuardSettings:
    """The cache bounds and TTLs (seconds)."""

    audience: str = "switchyard"
    token_ttl: float = 300.0
    token_margin: float = 10.0
    access_ttl: float = 5.0
    negative_ttl: float = 10.0
    stale_access: float = 300.0
    max_tokens: int = 10_000
    max_decisions: int = 50_000
    #: Below the API client's connection limit (20), so a review never queues for a socket
    #: inside its own timeout.
    max_concurrent_reviews: int = 16


class Guard:
    """Authenticates bearer tokens and authorizes endpoint use, with the caches above."""

    def __init__(self, reviewer: Reviewer, settings: GuardSettings = GuardSettings(),
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.reviewer = reviewer
        self.settings = settings
        self._clock, self._wall = clock, wall
        self._tokens: LruCache[bytes, Caller | Unauthenticated] = LruCache(
            settings.max_tokens, clock)
        self._decisions: LruCache[_Decision, bool] = LruCache(settings.max_decisions, clock)
        self._token_flights: SingleFlight[bytes, Caller] = SingleFlight()
        self._decision_flights: SingleFlight[_Decision, bool] = SingleFlight()
        self._reviews = asyncio.Semaphore(settings.max_concurrent_reviews)
        #: Reviews sent to the API server (tokens, decisions): for tests and the bench.
        self.sent = {"token": 0, "access": 0}

    def known(self, token: str) -> Caller | None:
        """The caller of a token with a fresh review, else None (then `authenticate`).

        The cached path of every request, without an await.
        """
        if len(token) > claims.MAX_TOKEN_CHARS:
            return None
        entry = self._tokens.fresh(claims.digest(token))
        if entry is None:
            return None
        value = entry.value
        return value if isinstance(value, Caller) else None

    def decided(self, caller: Caller, namespace: str, name: str) -> bool | None:
        """A fresh access decision, else None (then `allows`). No await."""
        if caller.unrestricted:
            return True
        entry = self._decisions.fresh((caller.key, namespace, name))
        return None if entry is None else entry.value

    async def authenticate(self, token: str) -> Caller:
        """The caller `token` belongs to. Raises Unauthenticated or ReviewUnavailable."""
        if not claims.well_formed(token):
            raise Unauthenticated("the bearer token is malformed")
        key = claims.digest(token)
        entry = self._tokens.fresh(key)
        if entry is not None:
            if isinstance(entry.value, Unauthenticated):
                raise entry.value
            return entry.value
        seen = claims.peek(token)
        left = None if seen.exp is None else seen.exp - self._wall()
        if left is not None and left <= 0:
            raise Unauthenticated("the token has expired")
        audience = self.settings.audience
        if seen.audiences is not None and audience not in seen.audiences:
            raise Unauthenticated(f"the token is not meant for audience {audience!r}")
        return await self._token_flights.run(key, lambda: self._review_token(key, token, left))

    async def _review_token(self, key: bytes, token: str, left: float | None) -> Caller:
        s = self.settings
        try:
            async with self._reviews:
                self.sent["token"] += 1
                caller = await self.reviewer.review_token(token)
        except Unauthenticated as exc:
            self._tokens.put(key, exc, s.negative_ttl)
            raise
        except ReviewUnavailable:
            stale = self._tokens.get(key)
            if stale is not None and isinstance(stale.value, Caller):
                return stale.value
            raise
        usable = s.token_ttl if left is None else left - s.token_margin
        fresh = min(s.token_ttl, usable)
        self._tokens.put(key, caller, fresh, stale_for=max(0.0, usable - fresh))
        return caller

    async def allows(self, caller: Caller, namespace: str, name: str) -> bool:
        """Whether `caller` may use endpoint `namespace/name` (existing or not).

        Raises ReviewUnavailable when the API server cannot answer and nothing is cached.
        """
        if caller.unrestricted:
            return True
        if not namespace or not name:  # "" would ask about every namespace
            return False
        key = (caller.key, namespace, name)
        entry = self._decisions.fresh(key)
        if entry is not None:
            return entry.value
        return await self._decision_flights.run(
            key, lambda: self._review_access(key, caller, namespace, name))

    async def _review_access(self, key: _Decision, caller: Caller, namespace: str,
                             name: str) -> bool:
        s = self.settings
        try:
            async with self._reviews:
                self.sent["access"] += 1
                allowed = await self.reviewer.may_use(caller, namespace, name)
        except ReviewUnavailable:
            stale = self._decisions.get(key)
            if stale is not None:
                return stale.value
            raise
        self._decisions.put(key, allowed, s.access_ttl, stale_for=s.stale_access)
        return allowed
