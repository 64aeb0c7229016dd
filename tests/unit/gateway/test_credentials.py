"""Key resolution by reference: env allow-list, Secret tables, missing keys."""

from __future__ import annotations

import base64

import pytest

from switchyard_gateway import errors
from switchyard_gateway.credentials import Credentials, secret_entries
from switchyard_schema import ApiKeyRef, SecretKeyRef

ENV = {"OPENAI_API_KEY": "sk-env-value", "PLATFORM_KEY": "sk-platform"}


def test_env_all_allowed_by_default() -> None:
    creds = Credentials(ENV)
    key = creds.resolve("default", ApiKeyRef(env_var="PLATFORM_KEY"))
    assert key is not None and key.reveal() == "sk-platform"


def test_env_allow_list_refuses_other_names_without_leaking() -> None:
    creds = Credentials(ENV, allow_env=["OPENAI_API_KEY"])
    assert creds.resolve("x", ApiKeyRef(env_var="OPENAI_API_KEY")) is not None
    with pytest.raises(errors.MissingCredential) as info:
        creds.resolve("x", ApiKeyRef(env_var="PLATFORM_KEY"), target="t")
    assert "allowed-env-keys" in info.value.message
    assert "sk-platform" not in str(info.value)


def test_secret_table_swaps_and_resolves_by_namespace() -> None:
    creds = Credentials({})
    manifest = {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "openai-key", "namespace": "team-a"},
                "data": {"api-key": base64.b64encode(b"sk-data\n").decode()},
                "stringData": {"other": "sk-string"}}
    creds.replace_secrets(secret_entries(manifest, "default"))
    ref = ApiKeyRef(secret_key_ref=SecretKeyRef(name="openai-key", key="api-key"))
    key = creds.resolve("team-a", ref)
    assert key is not None and key.reveal() == "sk-data"
    with pytest.raises(errors.MissingCredential):
        creds.resolve("default", ref)  # never another namespace's Secret
    creds.replace_secrets({})
    with pytest.raises(errors.MissingCredential):
        creds.resolve("team-a", ref)


def test_no_ref_means_no_key() -> None:
    assert Credentials({}).resolve("default", None) is None


def test_repr_never_shows_values() -> None:
    entries = secret_entries({"kind": "Secret", "metadata": {"name": "s"},
                              "stringData": {"k": "sk-secret-123"}}, "default")
    assert "sk-secret-123" not in repr(entries)
