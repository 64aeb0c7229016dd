"""`switchyard operator` flags: command line first, then SWITCHYARD_OPERATOR_<FLAG>."""

from __future__ import annotations

import argparse

import pytest

from switchyard_cli import operator_cmd


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    operator_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NAMESPACES", "KUBECONFIG", "LIVENESS_PORT", "STANDALONE"):
        monkeypatch.delenv(f"SWITCHYARD_OPERATOR_{name}", raising=False)
    args = _parse()
    assert args.namespaces == "" and args.kubeconfig is None
    assert args.liveness_port == 8081
    assert args.standalone is False
    assert args.lease_name == "switchyard-operator"


def test_env_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_OPERATOR_ALLOWED_BASE_URL_HOSTS", "a.example,*.svc")
    monkeypatch.setenv("SWITCHYARD_OPERATOR_STANDALONE", "true")
    monkeypatch.setenv("SWITCHYARD_OPERATOR_LIVENESS_PORT", "9000")
    args = _parse("--liveness-port", "9100", "--namespaces", "a, b")
    assert args.allowed_base_url_hosts == "a.example,*.svc"
    assert args.standalone is True
    assert args.liveness_port == 9100
    assert operator_cmd._split(args.namespaces) == ["a", "b"]


def test_signing_secret_flag() -> None:
    assert _parse().signing_secret == "switchyard-signing-key"
    assert operator_cmd.secret_ref("switchyard-signing-key", "sy") == (
        "sy", "switchyard-signing-key")
    assert operator_cmd.secret_ref("platform/key", "sy") == ("platform", "key")


def test_a_bare_env_key_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Not bound to hosts, a platform key could be sent anywhere: refuse to start."""
    args = _parse("--allowed-env-keys", "OPENAI_API_KEY", "--kubeconfig", "/nonexistent")
    assert operator_cmd.run(args) == 2
    assert "OPENAI_API_KEY=api.example.com" in capsys.readouterr().err
