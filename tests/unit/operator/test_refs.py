"""refs.py: which Secrets an endpoint needs, and messages for the unresolved ones."""

from __future__ import annotations

from typing import Any

import pytest

from switchyard_operator import apply, refs
from tests.unit.operator.helpers import AB_SPLIT, manifest

LABELLED = refs.SecretState(refs.Found.LABELLED, frozenset({"api-key"}))


def test_secret_refs_in_spec_order() -> None:
    found = refs.secret_refs(AB_SPLIT["spec"])
    assert [(r.name, r.key, r.path) for r in found] == [
        ("openai-key", "api-key", "spec.trafficSplit[0].apiKey"),
        ("anthropic-key", "api-key", "spec.trafficSplit[1].apiKey"),
    ]
    assert refs.secret_names(AB_SPLIT["spec"]) == {"openai-key", "anthropic-key"}
    assert refs.secret_refs("not a spec") == []


def test_all_resolved() -> None:
    states = {"openai-key": LABELLED, "anthropic-key": LABELLED}
    assert refs.resolve("team-a", refs.secret_refs(AB_SPLIT["spec"]), states) == []


def test_missing_unlabelled_and_missing_key() -> None:
    spec = manifest()["spec"]
    spec["fallbacks"].append(
        {
            "provider": "gemini",
            "model": "g",
            "apiKey": {"secretKeyRef": {"name": "gem", "key": "k"}},
        }
    )
    states = {
        "anthropic-key": refs.SecretState(refs.Found.UNLABELLED),
        "gem": refs.SecretState(refs.Found.LABELLED, frozenset({"other"})),
    }
    out = refs.resolve("team-a", refs.secret_refs(spec), states)
    assert [(u.ref.name, u.reason) for u in out] == [
        ("openai-key", "SecretNotFound"),
        ("anthropic-key", "SecretNotLabelled"),
        ("gem", "SecretKeyNotFound"),
    ]
    assert "Secret team-a/openai-key (key 'api-key'" in out[0].message
    assert (
        "kubectl label secret anthropic-key -n team-a switchyard.dev/credential=true"
        in out[1].message
    )
    assert "has no key 'k'" in out[2].message
    reason, message = refs.describe(out)
    assert reason == "SecretNotFound" and message.count("Secret team-a/") == 3


def test_unknown_keys_are_assumed_present() -> None:
    states = {"openai-key": refs.SecretState(refs.Found.LABELLED, None), "anthropic-key": LABELLED}
    assert refs.resolve("team-a", refs.secret_refs(AB_SPLIT["spec"]), states) == []


@pytest.mark.parametrize("name", ["../../team-b/secrets/b-key", "team-b/b-key", "..", "A",
                                  "a" * 254, "", "a..b", "-a", "a%2Fb"])
def test_a_path_is_not_a_secret_name(name: str) -> None:
    assert not refs.valid_name(name)


async def test_an_invalid_name_is_never_looked_up() -> None:
    """Defence in depth behind the CRD pattern: no API path is built from such a name."""

    class NoRequests:
        async def request(self, *args: object, **kwargs: object) -> object:
            raise AssertionError(f"request sent: {args}")

    client: Any = NoRequests()
    state = await apply.secret_state(client, "team-a", "../../team-b/secrets/b")
    assert state == refs.SecretState(refs.Found.MISSING)
    assert refs.valid_name("openai-key.v2")
