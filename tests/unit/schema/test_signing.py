"""switchyard_schema.signing: what the signature binds, rotation, and the key Secret's format."""

from __future__ import annotations

import base64

import pytest

from switchyard_schema import signing

KEY = b"k" * 32
OLD = b"o" * 32
KEYS = signing.SigningKeys(KEY)
PAYLOAD = b'{"name":"chat"}'


def test_a_signature_verifies_over_exactly_what_was_signed() -> None:
    sig = signing.sign(KEY, "team-a", "chat", "uid-1", PAYLOAD)
    assert sig.startswith("v1:")
    assert signing.verify(KEYS, "team-a", "chat", "uid-1", PAYLOAD, sig)


@pytest.mark.parametrize(
    "namespace,name,uid,payload",
    [
        ("team-b", "chat", "uid-1", PAYLOAD),  # replayed into another namespace
        ("team-a", "chat2", "uid-1", PAYLOAD),  # onto another endpoint
        ("team-a", "chat", "uid-2", PAYLOAD),  # onto a recreated endpoint
        ("team-a", "chat", "uid-1", PAYLOAD + b" "),  # a changed payload
        ("team-", "achat", "uid-1", PAYLOAD),  # fields shifted across a boundary
    ],
)
def test_anything_else_does_not_verify(namespace: str, name: str, uid: str, payload: bytes) -> None:
    sig = signing.sign(KEY, "team-a", "chat", "uid-1", PAYLOAD)
    assert not signing.verify(KEYS, namespace, name, uid, payload, sig)


def test_rotation_accepts_current_and_previous_only() -> None:
    old_sig = signing.sign(OLD, "ns", "e", "u", PAYLOAD)
    assert not signing.verify(KEYS, "ns", "e", "u", PAYLOAD, old_sig)
    assert signing.verify(signing.SigningKeys(KEY, OLD), "ns", "e", "u", PAYLOAD, old_sig)
    assert not signing.verify(KEYS, "ns", "e", "u", PAYLOAD, "v2:" + old_sig[3:])
    assert not signing.verify(KEYS, "ns", "e", "u", PAYLOAD, "")


def test_keys_from_secret_data() -> None:
    data = {"current": base64.b64encode(KEY).decode(), "previous": base64.b64encode(OLD).decode()}
    keys = signing.keys_from_secret(data)
    assert keys.accepted() == (KEY, OLD)
    assert "k" * 8 not in repr(keys)  # never printed
    with pytest.raises(signing.BadSigningKey, match="no data key 'current'"):
        signing.keys_from_secret({})
    with pytest.raises(signing.BadSigningKey, match="at least 32"):
        signing.keys_from_secret({"current": base64.b64encode(b"short").decode()})
    with pytest.raises(signing.BadSigningKey, match="not valid base64"):
        signing.keys_from_secret({"current": "!!"})
