"""`switchyard gateway`'s upstream flags: defaults from the transport's constants, values
from the command line or SWITCHYARD_* env vars, into the settings the app builds the
transport and the stream decoder from."""

from __future__ import annotations

import argparse

import pytest

from switchyard_cli import gateway_cmd
from switchyard_gateway.providers import sse
from switchyard_gateway.settings import GatewaySettings
from switchyard_gateway.transport import limits


def _settings(*argv: str) -> GatewaySettings:
    parser = argparse.ArgumentParser()
    gateway_cmd.add_arguments(parser)
    return gateway_cmd.settings_from(parser.parse_args(list(argv)))


def test_defaults_are_the_transport_constants() -> None:
    settings = _settings()
    assert settings.upstream_limits() == limits.Limits()
    assert settings.sse_limits() == sse.SseLimits()
    assert settings.upstream_keepalive_seconds == limits.KEEPALIVE_SECONDS < 5.0
    assert GatewaySettings().upstream_limits() == limits.Limits()
    assert settings.upstream_max_connections_per_origin == limits.CONNECTIONS_PER_ORIGIN
    assert settings.upstream_capacity_wait_seconds == limits.CAPACITY_WAIT_SECONDS
    assert settings.upstream_max_streams_per_origin == limits.STREAMS_PER_ORIGIN


def test_flags_and_env_set_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_UPSTREAM_MAX_BODY_BYTES", "1000")
    settings = _settings("--upstream-max-header-bytes", "2000", "--upstream-max-sse-line-bytes",
                         "3000", "--upstream-max-sse-event-bytes", "4000",
                         "--upstream-max-decompressed-bytes", "5000",
                         "--upstream-keepalive-seconds", "2.5",
                         "--upstream-max-connections-per-origin", "10000",
                         "--upstream-capacity-wait-seconds", "0",
                         "--upstream-max-streams-per-origin", "20000")
    assert settings.upstream_limits() == limits.Limits(header_bytes=2000, body_bytes=1000,
                                                       decompressed_bytes=5000)
    assert settings.sse_limits() == sse.SseLimits(line_bytes=3000, event_bytes=4000)
    assert settings.upstream_keepalive_seconds == 2.5
    assert settings.upstream_max_connections_per_origin == 10000
    assert settings.upstream_capacity_wait_seconds == 0.0
    assert settings.upstream_max_streams_per_origin == 20000


@pytest.mark.parametrize("argv", [["--upstream-max-body-bytes", "0"],
                                  ["--upstream-max-sse-line-bytes", "-1"],
                                  ["--upstream-keepalive-seconds", "0"],
                                  ["--upstream-max-connections-per-origin", "0"],
                                  ["--upstream-capacity-wait-seconds", "-1"],
                                  ["--upstream-max-streams-per-origin", "0"]])
def test_unusable_values_are_a_usage_error(argv: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    gateway_cmd.add_arguments(parser)
    assert gateway_cmd.run(parser.parse_args(argv)) == 2
    assert argv[0] in capsys.readouterr().err
