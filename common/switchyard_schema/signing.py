"""The rendered ConfigMap's signature: the operator signs, the gateway verifies.

Why: tenants hold `edit` in their namespace, which includes updating ConfigMaps, so the
payload's own `specHash` proves nothing (anyone can recompute it). The operator signs each
rendered payload with HMAC-SHA256 under a key kept in a Secret of the release namespace
(tenants have no rights there; the gateway may `get` that one Secret by name). The gateway
serves a ConfigMap only when its signature verifies (docs/security.md).

The signed message is an unambiguous encoding (a domain tag, then each field as an 8-byte
big-endian length and its bytes) of the endpoint's namespace, name and UID and the exact
`endpoint.json` bytes: a payload cannot be replayed onto another endpoint, nor onto a
recreated endpoint of the same name (its UID differs).

Key Secret: data key `current` (the operator signs with it) and optionally `previous`
(accepted too, for rotation); each at least 32 bytes once base64-decoded.

Imported by the operator (`reconcile.py`, `switchyard_cli.operator_cmd`) and the gateway
(`config/trust.py`). Pure: no I/O, and never logs or returns key material.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
from collections.abc import Mapping

#: The ConfigMap annotation that carries the signature.
ANNOTATION = "switchyard.dev/signature"
#: Data keys of the signing-key Secret.
CURRENT, PREVIOUS = "current", "previous"
#: Shortest accepted key (HMAC-SHA256's block size is 64; 32 random bytes are plenty).
MIN_KEY_BYTES = 32
_VERSION = "v1"
_DOMAIN = b"switchyard.dev/configmap-signature/v1"


class BadSigningKey(ValueError):
    """The signing-key Secret is missing a key, or a key is not valid or too short."""


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKeys:
    """The key the operator signs with and every key a signature may verify under."""

    current: bytes = dataclasses.field(repr=False)
    previous: bytes | None = dataclasses.field(default=None, repr=False)

    def accepted(self) -> tuple[bytes, ...]:
        """The keys a signature is checked against (current first)."""
        return (self.current,) if self.previous is None else (self.current, self.previous)

    def fingerprint(self) -> str:
        """A short, non-reversible id of the key set, for logs ("keys changed")."""
        digest = hashlib.sha256(b"".join(hashlib.sha256(k).digest() for k in self.accepted()))
        return digest.hexdigest()[:12]


def _decode(data: Mapping[str, str], key: str) -> bytes | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        value = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSigningKey(f"data key {key!r} is not valid base64") from exc
    if len(value) < MIN_KEY_BYTES:
        raise BadSigningKey(
            f"data key {key!r} holds {len(value)} bytes; at least {MIN_KEY_BYTES} are needed"
        )
    return value


def keys_from_secret(data: Mapping[str, str] | None) -> SigningKeys:
    """The keys of a Secret's `data` (base64 values, as the API returns them).

    Raises `BadSigningKey` when `current` is missing or a key is unusable.
    """
    current = _decode(data or {}, CURRENT)
    if current is None:
        raise BadSigningKey(f"the Secret has no data key {CURRENT!r}")
    return SigningKeys(current, _decode(data or {}, PREVIOUS))


def _message(namespace: str, name: str, uid: str, payload: bytes) -> bytes:
    out = [_DOMAIN]
    for part in (namespace.encode(), name.encode(), uid.encode(), payload):
        out.append(len(part).to_bytes(8, "big"))
        out.append(part)
    return b"".join(out)


def sign(key: bytes, namespace: str, name: str, uid: str, payload: bytes) -> str:
    """The annotation value for `payload` rendered for endpoint `namespace/name` of `uid`."""
    mac = hmac.new(key, _message(namespace, name, uid, payload), hashlib.sha256)
    return f"{_VERSION}:{mac.hexdigest()}"


def verify(
    keys: SigningKeys, namespace: str, name: str, uid: str, payload: bytes, signature: str
) -> bool:
    """True when `signature` was made by one of the accepted keys over these exact fields."""
    version, _, digest = signature.partition(":")
    if version != _VERSION or not digest:
        return False
    message = _message(namespace, name, uid, payload)
    ok = False
    for key in keys.accepted():  # no early exit: the time taken does not say which key
        expected = hmac.new(key, message, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, digest) or ok
    return ok
