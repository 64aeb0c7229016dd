"""Property: a split is accepted exactly when its weights are in 1..100 and sum to 100."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard_schema import validate_manifest


def manifest(weights: list[int]) -> dict[str, object]:
    return {
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "GatewayEndpoint",
        "metadata": {"name": "chat"},
        "spec": {
            "trafficSplit": [
                {
                    "provider": "openai-compatible",
                    "model": f"m{i}",
                    "baseUrl": "http://127.0.0.1:8000/v1",
                    "weight": w,
                }
                for i, w in enumerate(weights)
            ]
        },
    }


@st.composite
def valid_splits(draw: st.DrawFn) -> list[int]:
    """Weights in 1..100 summing to exactly 100, 1..16 of them."""
    n = draw(st.integers(1, 16))
    cuts = sorted(draw(st.lists(st.integers(1, 99), min_size=n - 1, max_size=n - 1, unique=True)))
    bounds = [0, *cuts, 100]
    return [b - a for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(valid_splits())
def test_any_split_summing_to_100_is_accepted(weights: list[int]) -> None:
    assert validate_manifest(manifest(weights)) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-50, 200), min_size=1, max_size=16))
def test_any_other_split_is_rejected(weights: list[int]) -> None:
    ok = all(1 <= w <= 100 for w in weights) and sum(weights) == 100
    assert (validate_manifest(manifest(weights)) == []) == ok
