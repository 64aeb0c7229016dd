"""The operator-to-gateway contract: one decoding rule for Secret values, in both modes."""

from __future__ import annotations

import base64

import pytest

from switchyard_gateway.credentials import secret_entries
from switchyard_operator import render
from switchyard_schema import BadSecretValue, contract, decode_secret_value, secret_text


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b"sk-plain", "sk-plain"),
        (b"sk-echoed\n", "sk-echoed"),  # echo key > f; kubectl create secret --from-file
        (b"sk-windows\r\n", "sk-windows"),
        (b" sk-spaced ", " sk-spaced "),  # opaque: spaces are kept
        ("sk-ünï".encode(), "sk-ünï"),
    ],
)
def test_decode_secret_value(raw: bytes, key: str) -> None:
    assert decode_secret_value(_b64(raw)) == key


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("c2stbm90LWI2NA", "base64"),  # missing padding
        ("c2st bm90LWI2NA==", "base64"),  # a stray character: strict, not lenient
        ("!!!!", "base64"),
        (_b64(b"\xff\xfe"), "UTF-8"),
        (_b64(b"\n"), "empty"),
        (_b64(b"sk-a\nX-Injected: 1"), "control"),
        (_b64(b"sk-a\x00"), "control"),
    ],
)
def test_bad_secret_values_are_refused_without_echoing_them(data: str, why: str) -> None:
    with pytest.raises(BadSecretValue) as info:
        decode_secret_value(data)
    assert why in str(info.value)
    assert "sk-a" not in str(info.value)


def test_file_mode_and_cluster_mode_yield_the_same_key() -> None:
    """One Secret, read as a file manifest and as the API server returns it (data only)."""
    manifest = {"kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
                "data": {"a": _b64(b"sk-one\n")}, "stringData": {"b": "sk-two\n"}}
    # The API server folds stringData into data byte for byte.
    served = {"a": manifest["data"]["a"], "b": _b64(b"sk-two\n")}  # type: ignore[index]
    entries = secret_entries(manifest, "default")
    for key, data in served.items():
        assert entries[("n", "s", key)].reveal() == decode_secret_value(data)
    assert secret_text("sk-two\n") == "sk-two"


def test_rendered_configmap_speaks_the_contract() -> None:
    assert render.configmap_name("chat") == contract.configmap_name("chat") == "gwe-chat"
    assert contract.MANAGED_BY_SELECTOR == "app.kubernetes.io/managed-by=switchyard-operator"
    assert contract.CREDENTIAL_SELECTOR == "switchyard.dev/credential=true"
    assert contract.is_credential({contract.CREDENTIAL_LABEL: "true"})
    assert not contract.is_credential({contract.CREDENTIAL_LABEL: "yes"})
    assert not contract.is_credential(None)
