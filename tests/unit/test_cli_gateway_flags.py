"""`switchyard gateway` policy flags: the operator's names and syntax, the old name deprecated."""

from __future__ import annotations

import argparse
import logging

import pytest

from switchyard_cli import gateway_cmd
from switchyard_schema.policy import HostRule


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    gateway_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_allow_every_env_key_standalone() -> None:
    settings = gateway_cmd.settings_from(_parse())
    assert settings.policy.env_keys is None and settings.policy.base_url_hosts == ()
    assert settings.signing_secret == "switchyard-signing-key"


def test_allowed_env_keys_bind_hosts() -> None:
    settings = gateway_cmd.settings_from(_parse(
        "--allowed-env-keys", "OPENAI_API_KEY=api.openai.com|*.openai.azure.com",
        "--allowed-base-url-hosts", "vllm.models:8000"))
    assert settings.policy.env_keys == {
        "OPENAI_API_KEY": (HostRule("*.openai.azure.com"), HostRule("api.openai.com"))}
    assert settings.policy.base_url_hosts == (HostRule("vllm.models", 8000),)


def test_old_flag_name_still_works_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = gateway_cmd.settings_from(_parse("--allow-env-keys", "K=api.openai.com"))
    assert settings.policy.env_names() == frozenset({"K"})
    assert "deprecated" in caplog.text


def test_a_bare_env_key_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert gateway_cmd.run(_parse("--allowed-env-keys", "OPENAI_API_KEY")) == 2
    assert "bind the env var" in capsys.readouterr().err


def test_shared_cooldown_is_on_unless_turned_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert gateway_cmd.settings_from(_parse()).shared_cooldown
    assert not gateway_cmd.settings_from(_parse("--shared-cooldown", "off")).shared_cooldown
    with pytest.raises(SystemExit):
        _parse("--shared-cooldown", "maybe")
    assert "invalid choice" in capsys.readouterr().err
