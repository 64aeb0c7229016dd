"""The price table (`--prices-file`): parsing, refusals and the cost arithmetic."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from switchyard_cli import gateway_cmd
from switchyard_gateway.pricing import PriceTable, PriceTableError
from switchyard_gateway.providers.base import Usage


def test_cost_is_per_million_tokens_and_unpriced_models_cost_nothing() -> None:
    table = PriceTable.parse(b'{"gpt-4o-mini": {"input": 0.15, "output": 0.6}, "free": {}}')
    assert table.cost("gpt-4o-mini", Usage(2_000_000, 1_000_000)) == pytest.approx(0.9)
    assert table.cost("free", Usage(10, 10)) == 0.0
    assert table.cost("unknown", Usage(10, 10)) is None


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"m": 1}', b'{"m": {"input": -1}}', b'{"m": {"input": "1"}}',
    b'{"m": {"output": true}}', b'{"m": {"input": 1, "cached": 2}}',
    b'{"m": {"input": 1e999}}',
])
def test_malformed_tables_are_refused(raw: bytes) -> None:
    with pytest.raises(PriceTableError):
        PriceTable.parse(raw)


def test_a_bad_prices_file_stops_the_cli_with_exit_2(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"m": {"input": -1}}')
    parser = argparse.ArgumentParser()
    gateway_cmd.add_arguments(parser)
    args = parser.parse_args(["--config", str(tmp_path), "--prices-file", str(prices)])
    assert gateway_cmd.run(args) == 2
    assert "--prices-file" in capsys.readouterr().err
    with pytest.raises(PriceTableError, match="cannot read"):
        PriceTable.load(str(tmp_path / "absent.json"))
