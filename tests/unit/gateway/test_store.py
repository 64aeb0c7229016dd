"""The config store: resolution rules, atomic swaps, rejections, listeners."""

from __future__ import annotations

from switchyard_gateway.config.store import ChangeKind, ConfigChange, ConfigStore
from tests.unit.gateway.endpoints import config, target


def test_bare_name_resolves_in_the_default_namespace_only() -> None:
    store = ConfigStore("default")
    store.apply(config(name="chat", namespace="default"))
    store.apply(config(name="summarize", namespace="team-a"))
    assert store.resolve("chat") is not None
    assert store.resolve("default/chat") is not None
    assert store.resolve("team-a/summarize") is not None
    assert store.resolve("summarize") is None  # never a search of other namespaces
    assert store.resolve("team-a/chat") is None


def test_other_default_namespace() -> None:
    store = ConfigStore("team-a")
    store.apply(config(name="summarize", namespace="team-a"))
    assert store.resolve("summarize") is store.resolve("team-a/summarize") is not None


def test_swap_is_one_reference_and_old_snapshots_stay_intact() -> None:
    store = ConfigStore()
    store.apply(config(split=[target("a", 100)]))
    before = store.snapshot()
    old = store.resolve("chat")
    store.apply(config(split=[target("b", 100)]))
    assert before["default/chat"] is old
    assert old is not None and old.split[0].name == "a"
    new = store.resolve("chat")
    assert new is not None and new.split[0].name == "b"


def test_reject_keeps_the_last_good_config_and_apply_clears_it() -> None:
    changes: list[ConfigChange] = []
    store = ConfigStore()
    store.subscribe(changes.append)
    store.apply(config())
    good = store.resolve("chat")
    store.reject("default/chat", "weights sum to 90")
    assert store.resolve("chat") is good
    assert store.rejected() == {"default/chat": "weights sum to 90"}
    store.apply(config())  # same hash: unchanged, but no longer rejected
    assert store.rejected() == {}
    assert [c.kind for c in changes] == [ChangeKind.APPLIED, ChangeKind.REJECTED,
                                         ChangeKind.UNCHANGED]
    assert changes[0].spec_hash.startswith("sha256:")


def test_remove() -> None:
    store = ConfigStore()
    store.apply(config())
    assert store.remove("default/chat") is not None
    assert store.resolve("chat") is None
    assert store.remove("default/chat") is None


def test_a_failing_listener_does_not_stop_a_change() -> None:
    store = ConfigStore()

    def broken(change: ConfigChange) -> None:
        raise RuntimeError("boom")

    store.subscribe(broken)
    store.apply(config())
    assert store.resolve("chat") is not None
