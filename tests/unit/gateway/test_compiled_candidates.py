"""Candidate lists worked out at compile time: split target, then unseen fallbacks."""

from __future__ import annotations

from tests.unit.gateway.endpoints import compiled, target


def test_each_split_target_gets_its_own_ordered_list_without_duplicates() -> None:
    endpoint = compiled(split=[target("a", 50), target("b", 50)],
                        fallbacks=[target("a-again", model="a"), target("c")])
    names = [[t.name for t in lst] for lst in endpoint.candidates]
    # "a-again" has a's identity (same provider, model, key): tried at most once.
    assert names == [["a", "c"], ["b", "a-again", "c"]]


def test_single_target_endpoint() -> None:
    endpoint = compiled()
    assert [[t.name for t in lst] for lst in endpoint.candidates] == [["primary"]]
