"""The caller-identity guard's caches: TTLs, bounds, single flight, outages (fake reviewer,
fake clocks: a pure unit)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from switchyard_gateway.identity import (
    Caller,
    Guard,
    GuardSettings,
    ReviewUnavailable,
    Unauthenticated,
)
from switchyard_gateway.identity.cache import LruCache

WALL0 = 1_900_000_000.0


def jwt(exp: float | None = WALL0 + 3600, aud: object = ("switchyard",), sub: str = "a") -> str:
    claims: dict[str, object] = {"sub": sub}
    if exp is not None:
        claims["exp"] = exp
    if aud is not None:
        claims["aud"] = list(aud) if isinstance(aud, tuple) else aud
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl"


APP = Caller(username="system:serviceaccount:team-a:app", uid="u1",
             groups=("system:serviceaccounts", "system:serviceaccounts:team-a"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeReviewer:
    def __init__(self) -> None:
        self.callers: dict[str, Caller] = {}
        self.grants: set[tuple[str, str, str]] = set()
        self.down = False
        self.token_reviews = 0
        self.access_reviews = 0
        self.gate: asyncio.Event | None = None

    async def review_token(self, token: str) -> Caller:
        self.token_reviews += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ReviewUnavailable("down")
        if token not in self.callers:
            raise Unauthenticated("no")
        return self.callers[token]

    async def may_use(self, caller: Caller, namespace: str, name: str) -> bool:
        self.access_reviews += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ReviewUnavailable("down")
        return (caller.username, namespace, name) in self.grants


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reviewer() -> FakeReviewer:
    return FakeReviewer()


def guard_of(reviewer: FakeReviewer, clock: Clock, **settings: float) -> Guard:
    offset = WALL0 - clock.now
    return Guard(reviewer, GuardSettings(**settings),  # type: ignore[arg-type]
                 clock=clock, wall=lambda: clock.now + offset)


async def test_token_review_is_cached_until_shortly_before_exp(
        reviewer: FakeReviewer, clock: Clock) -> None:
    token = jwt(exp=WALL0 + 60)
    reviewer.callers[token] = APP
    guard = guard_of(reviewer, clock, token_ttl=300, token_margin=10)
    assert await guard.authenticate(token) == APP
    clock.now += 49
    assert await guard.authenticate(token) == APP
    assert reviewer.token_reviews == 1
    clock.now += 2  # 51 s: within the margin before exp, reviewed again
    assert await guard.authenticate(token) == APP
    assert reviewer.token_reviews == 2


async def test_token_review_is_repeated_after_token_ttl(reviewer: FakeReviewer,
                                                        clock: Clock) -> None:
    token = jwt(exp=WALL0 + 3600)
    reviewer.callers[token] = APP
    guard = guard_of(reviewer, clock, token_ttl=300)
    await guard.authenticate(token)
    clock.now += 299
    await guard.authenticate(token)
    assert reviewer.token_reviews == 1
    clock.now += 2
    del reviewer.callers[token]  # the ServiceAccount was deleted meanwhile
    with pytest.raises(Unauthenticated):
        await guard.authenticate(token)


async def test_expired_token_is_refused_without_a_review(reviewer: FakeReviewer,
                                                         clock: Clock) -> None:
    token = jwt(exp=WALL0 - 1)
    reviewer.callers[token] = APP  # even if the API server would still say yes
    with pytest.raises(Unauthenticated, match="expired"):
        await guard_of(reviewer, clock).authenticate(token)
    assert reviewer.token_reviews == 0


async def test_cached_token_is_not_served_past_its_expiry_even_when_the_api_is_down(
        reviewer: FakeReviewer, clock: Clock) -> None:
    token = jwt(exp=WALL0 + 100)
    reviewer.callers[token] = APP
    guard = guard_of(reviewer, clock, token_ttl=30, token_margin=10)
    await guard.authenticate(token)
    reviewer.down = True
    clock.now += 60  # past the token TTL, before exp: the stale review is served
    assert await guard.authenticate(token) == APP
    clock.now += 45  # past exp
    with pytest.raises(Unauthenticated, match="expired"):
        await guard.authenticate(token)


@pytest.mark.parametrize("aud", ["other", ("other", "api"), ()])
async def test_wrong_audience_is_refused_without_a_review(
        reviewer: FakeReviewer, clock: Clock, aud: object) -> None:
    token = jwt(aud=aud)
    reviewer.callers[token] = APP
    with pytest.raises(Unauthenticated, match="audience"):
        await guard_of(reviewer, clock).authenticate(token)
    assert reviewer.token_reviews == 0


@pytest.mark.parametrize("token", ["", "a b", "tok\x00", "é", "x" * 8193])
async def test_malformed_token_is_refused_without_a_review(
        reviewer: FakeReviewer, clock: Clock, token: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        await guard_of(reviewer, clock).authenticate(token)
    assert reviewer.token_reviews == 0


async def test_refused_token_is_remembered_briefly(reviewer: FakeReviewer,
                                                   clock: Clock) -> None:
    guard = guard_of(reviewer, clock, negative_ttl=10)
    token = jwt()
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await guard.authenticate(token)
    assert reviewer.token_reviews == 1
    clock.now += 11
    reviewer.callers[token] = APP
    assert await guard.authenticate(token) == APP


async def test_concurrent_reviews_of_one_token_are_one_request(reviewer: FakeReviewer,
                                                               clock: Clock) -> None:
    token = jwt()
    reviewer.callers[token] = APP
    reviewer.gate = asyncio.Event()
    guard = guard_of(reviewer, clock)
    waiting = [asyncio.create_task(guard.authenticate(token)) for _ in range(50)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one caller hangs up: the others still get the answer
    reviewer.gate.set()
    results = await asyncio.gather(*waiting[1:])
    assert results == [APP] * 49
    assert reviewer.token_reviews == 1
    decisions = [asyncio.create_task(guard.allows(APP, "team-a", "chat")) for _ in range(20)]
    assert await asyncio.gather(*decisions) == [False] * 20
    assert reviewer.access_reviews == 1


async def test_revoked_access_takes_effect_within_the_access_ttl(reviewer: FakeReviewer,
                                                                 clock: Clock) -> None:
    reviewer.grants.add((APP.username, "team-a", "chat"))
    guard = guard_of(reviewer, clock, access_ttl=5)
    assert await guard.allows(APP, "team-a", "chat")
    reviewer.grants.clear()  # the RoleBinding is deleted
    clock.now += 4.9
    assert await guard.allows(APP, "team-a", "chat")  # cached
    clock.now += 0.2
    assert not await guard.allows(APP, "team-a", "chat")
    assert reviewer.access_reviews == 2


async def test_api_server_down_serves_cached_callers_and_fails_closed_for_new_ones(
        reviewer: FakeReviewer, clock: Clock) -> None:
    known, new = jwt(sub="known"), jwt(sub="new")
    reviewer.callers[known] = reviewer.callers[new] = APP
    reviewer.grants.add((APP.username, "team-a", "chat"))
    guard = guard_of(reviewer, clock, access_ttl=5, stale_access=300)
    await guard.authenticate(known)
    assert await guard.allows(APP, "team-a", "chat")
    reviewer.down = True
    clock.now += 60  # every access decision is stale now
    assert await guard.authenticate(known) == APP
    assert await guard.allows(APP, "team-a", "chat")
    with pytest.raises(ReviewUnavailable):
        await guard.authenticate(new)
    with pytest.raises(ReviewUnavailable):
        await guard.allows(APP, "team-a", "other-endpoint")
    clock.now += 300  # past the stale window: fail closed for the known caller too
    with pytest.raises(ReviewUnavailable):
        await guard.allows(APP, "team-a", "chat")


async def test_an_empty_namespace_or_name_is_never_reviewed(reviewer: FakeReviewer,
                                                            clock: Clock) -> None:
    guard = guard_of(reviewer, clock)
    # "" in a SubjectAccessReview means every namespace: a cluster-wide grant would answer.
    assert not await guard.allows(APP, "", "chat")
    assert not await guard.allows(APP, "team-a", "")
    assert reviewer.access_reviews == 0


async def test_unrestricted_caller_is_never_reviewed(reviewer: FakeReviewer,
                                                     clock: Clock) -> None:
    guard = guard_of(reviewer, clock)
    assert await guard.allows(Caller("file", unrestricted=True), "team-b", "private")
    assert reviewer.access_reviews == 0


async def test_token_cache_is_bounded_and_holds_no_token(reviewer: FakeReviewer,
                                                         clock: Clock) -> None:
    guard = guard_of(reviewer, clock, max_tokens=8, max_decisions=4)
    tokens = [jwt(sub=f"s{i}") for i in range(100)]
    for i, token in enumerate(tokens):
        reviewer.callers[token] = APP
        await guard.authenticate(token)
        await guard.allows(APP, "team-a", f"endpoint-{i}")
    assert len(guard._tokens) == 8
    assert len(guard._decisions) == 4
    keys = repr(list(guard._tokens._entries))
    assert not any(t in keys or t.split(".")[1] in keys for t in tokens)


def test_lru_cache_evicts_the_least_recently_used(clock: Clock) -> None:
    cache: LruCache[str, int] = LruCache(2, clock)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", 3, 10)
    assert cache.get("b") is None and cache.get("a") is not None
    clock.now += 10
    assert cache.fresh("a") is None
    assert cache.get("a") is None  # no stale window: gone
    with pytest.raises(ValueError):
        LruCache(0, clock)
