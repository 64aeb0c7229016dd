"""The gateway's Secret cache holds only referenced values, and only of labelled Secrets."""

from __future__ import annotations

import base64
from typing import Any

from switchyard_gateway.config.credential_cache import CredentialCache

LABEL = {"switchyard.dev/credential": "true"}


def _secret(name: str, data: dict[str, str], version: str = "1",
            labels: dict[str, str] | None = None, namespace: str = "team-a") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": version,
                         "labels": LABEL if labels is None else labels},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def _revealed(cache: CredentialCache) -> dict[tuple[str, str, str], str]:
    return {k: v.reveal() for k, v in cache.table().items()}


def test_unreferenced_values_are_dropped_at_intake() -> None:
    cache = CredentialCache()
    cache.want({("team-a", "keys", "openai")})
    cache.take(_secret("keys", {"openai": "sk-o\n", "anthropic": "sk-a"}))
    cache.take(_secret("unused", {"k": "sk-unused"}))
    assert cache.held() == {("team-a", "keys", "openai")}
    assert _revealed(cache) == {("team-a", "keys", "openai"): "sk-o"}


def test_values_are_kept_until_the_first_want_then_trimmed() -> None:
    cache = CredentialCache()  # first sync: nothing applied yet, so nothing is known wanted
    cache.replace("", [_secret("keys", {"a": "sk-a", "b": "sk-b"})])
    assert len(cache.held()) == 2
    assert cache.want({("team-a", "keys", "a")}) == []
    assert cache.held() == {("team-a", "keys", "a")}


def test_a_new_reference_to_a_dropped_key_asks_for_that_one_secret() -> None:
    cache = CredentialCache()
    cache.want(set())
    cache.take(_secret("keys", {"a": "sk-a"}, version="5"))
    assert cache.held() == frozenset()
    assert cache.want({("team-a", "keys", "a"), ("team-a", "keys", "nope"),
                       ("team-a", "missing", "a")}) == [("team-a", "keys")]
    assert not cache.take_fetched(_secret("keys", {"a": "sk-old"}, version="4"))  # not the watch's
    assert cache.take_fetched(_secret("keys", {"a": "sk-a"}, version="5"))
    assert _revealed(cache) == {("team-a", "keys", "a"): "sk-a"}
    assert cache.want({("team-a", "keys", "a")}) == []


def test_unlabelled_secret_is_never_taken_whatever_brought_it() -> None:
    cache = CredentialCache()
    cache.want({("team-a", "plain", "k")})
    cache.take(_secret("plain", {"k": "sk-plain"}, labels={}))
    assert cache.held() == frozenset() and cache.want({("team-a", "plain", "k")}) == []
    cache.take(_secret("plain", {"k": "sk-plain"}, version="2"))
    assert cache.held() == {("team-a", "plain", "k")}
    cache.take(_secret("plain", {"k": "sk-plain"}, version="3", labels={}))  # label removed
    assert cache.held() == frozenset()
    cache.take(_secret("plain", {"k": "sk-plain"}, version="4"))
    cache.want(set())
    cache.want({("team-a", "plain", "k")})  # referenced again: a GET is asked for ...
    assert cache.take_fetched(_secret("plain", {"k": "sk-plain"}, version="4", labels={}))
    assert cache.held() == frozenset()  # ... and an unlabelled answer is not used


def test_bad_values_are_not_fetched_again_and_never_printed() -> None:
    cache = CredentialCache()
    cache.want({("team-a", "keys", "k")})
    bad = _secret("keys", {})
    bad["data"] = {"k": "not base64 !"}
    cache.take(bad)
    assert cache.held() == frozenset()
    assert cache.want({("team-a", "keys", "k")}) == []  # a GET would change nothing


def test_replace_covers_only_its_namespace() -> None:
    cache = CredentialCache()
    cache.take(_secret("a", {"k": "v1"}, namespace="n1"))
    cache.take(_secret("b", {"k": "v2"}, namespace="n2"))
    cache.replace("n1", [])
    assert cache.held() == {("n2", "b", "k")}
    cache.forget(("n2", "b"))
    assert cache.held() == frozenset()
