"""The optional price table: US dollars per million input and output tokens, by model.

Loaded once at start from `--prices-file` (JSON: `{"gpt-4o-mini": {"input": 0.15,
"output": 0.6}, ...}`; the chart's `gateway.prices` renders it). Read by the metrics
(`switchyard_cost_usd`) and the attempt spans (`switchyard.cost.usd`). A model not in
the table has no cost (never a guessed one). Must not: fetch prices from anywhere.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import orjson

from switchyard_gateway.providers.base import Usage


class PriceTableError(ValueError):
    """The price file is unreadable or not a table of non-negative prices."""


@dataclasses.dataclass(frozen=True, slots=True)
class Price:
    """Dollars per million tokens."""

    input: float
    output: float


class PriceTable:
    """Prices by upstream model name (the target's `model`)."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = prices

    @classmethod
    def parse(cls, raw: bytes) -> PriceTable:
        """Parse the JSON table. Raises PriceTableError."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise PriceTableError(f"price table is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PriceTableError("price table must map model names to prices")
        prices: dict[str, Price] = {}
        for model, entry in data.items():
            if not isinstance(entry, dict) or set(entry) - {"input", "output"}:
                raise PriceTableError(f"price of {model!r}: only 'input' and 'output'")
            values = [entry.get("input", 0), entry.get("output", 0)]
            for value in values:
                if (isinstance(value, bool) or not isinstance(value, (int, float))
                        or not math.isfinite(value) or value < 0):
                    raise PriceTableError(f"price of {model!r}: prices are numbers >= 0")
            prices[model] = Price(float(values[0]), float(values[1]))
        return cls(prices)

    @classmethod
    def load(cls, path: str) -> PriceTable:
        """Read and parse the file. Raises PriceTableError."""
        try:
            raw = pathlib.Path(path).read_bytes()
        except OSError as exc:
            raise PriceTableError(f"cannot read price table {path}: {exc.strerror}") from None
        return cls.parse(raw)

    def cost(self, model: str, usage: Usage) -> float | None:
        """The dollars `usage` of `model` cost (None: the model has no price)."""
        price = self._prices.get(model)
        if price is None:
            return None
        return (usage.prompt_tokens * price.input
                + usage.completion_tokens * price.output) / 1_000_000
