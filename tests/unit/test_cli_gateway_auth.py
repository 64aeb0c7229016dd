"""`switchyard gateway` flags of caller identity and the admin port (argparse only)."""

from __future__ import annotations

import argparse

import pytest

from switchyard_cli import gateway_cmd


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    gateway_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_no_caller_identity_and_admin_port_8081() -> None:
    settings = gateway_cmd.settings_from(parse())
    assert settings.auth_kubernetes is False
    assert settings.auth_audience == "switchyard"
    assert settings.admin_port == 8081


def test_auth_kubernetes_with_an_audience() -> None:
    settings = gateway_cmd.settings_from(parse("--auth", "kubernetes", "--auth-audience",
                                               "gw.example", "--admin-port", "9000"))
    assert settings.auth_kubernetes and settings.auth_audience == "gw.example"
    assert settings.admin_port == 9000


def test_an_unknown_auth_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert gateway_cmd.run(parse("--auth", "oidc", "--config", ".")) == 2
    assert "--auth oidc: expected kubernetes" in capsys.readouterr().err


def test_auth_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_AUTH", "kubernetes")
    assert gateway_cmd.settings_from(parse()).auth_kubernetes
