"""Callers and what a bearer token says about itself, read without verifying it.

The unverified claims (`exp`, `aud`) are used only to refuse a token early (expired, wrong
audience) and to bound how long a review is cached: an attacker who forges them can only
get their own request refused sooner or reviewed again. Acceptance always comes from the
API server's TokenReview (`reviews.py`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re

import orjson

#: A ServiceAccount username: `system:serviceaccount:<namespace>:<name>`.
_SA_USER = re.compile(r"^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):[^:]+$")
#: Longest bearer reviewed: projected tokens are ~1 KB; anything far bigger is refused
#: before it costs the API server a review.
MAX_TOKEN_CHARS = 8192
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller, as TokenReview described it (or a gateway-wide token)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: True for a `--auth-tokens-file` token: the gateway-wide key, allowed everything.
    unrestricted: bool = False
    #: Worked out once per review, read on every request (`__post_init__`): the
    #: ServiceAccount's namespace (None for any other user), and the identity as one
    #: string, the access cache's key (hashing the whole dataclass costs more).
    namespace: str | None = dataclasses.field(init=False, compare=False, repr=False)
    key: str = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        found = _SA_USER.match(self.username)
        object.__setattr__(self, "namespace", found.group(1) if found else None)
        object.__setattr__(self, "key", repr((self.username, self.uid, self.groups,
                                              self.extra, self.unrestricted)))


def well_formed(token: str) -> bool:
    """True if `token` may be a bearer token at all (printable ASCII, not too long)."""
    return 0 < len(token) <= MAX_TOKEN_CHARS and _TOKEN_CHARS.match(token) is not None


def digest(token: str) -> bytes:
    """The cache key of a token: its SHA-256, so no cache holds the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclasses.dataclass(frozen=True, slots=True)
class Claims:
    """The unverified claims the gateway looks at; None where absent or unreadable."""

    exp: float | None = None
    audiences: tuple[str, ...] | None = None


def peek(token: str) -> Claims:
    """The unverified `exp` and `aud` of a JWT; empty Claims for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return Claims()
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        return Claims()
    if not isinstance(data, dict):
        return Claims()
    exp = data.get("exp")
    aud = data.get("aud")
    audiences: tuple[str, ...] | None = None
    if isinstance(aud, str):
        audiences = (aud,)
    elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        audiences = tuple(aud)
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return Claims(audiences=audiences)
    return Claims(exp=float(exp), audiences=audiences)
