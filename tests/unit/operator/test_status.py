"""status.py: conditions in the Kubernetes convention, with no flapping."""

from __future__ import annotations

from switchyard_operator import status

T0, T1 = "2025-01-01T00:00:00Z", "2025-01-01T00:05:00Z"


def _conds(ready: str = "True", reason: str = "Rendered") -> list[status.Condition]:
    return [
        status.Condition("Ready", ready, reason, "msg"),
        status.Condition("Accepted", "True", "Valid", "ok"),
        status.Condition("ResolvedRefs", "True", "AllRefsResolved", "ok"),
    ]


SUMMARY = status.Summary("gwe-chat", "sha256:aa", "gpt5:50,claude:50", 2)


def test_first_status_has_every_field() -> None:
    new = status.build({}, _conds(), SUMMARY, 4, T0)
    assert new["observedGeneration"] == 4
    assert new["configMapName"] == "gwe-chat"
    assert new["specHash"] == "sha256:aa"
    assert new["targets"] == "gpt5:50,claude:50"
    assert new["fallbackCount"] == 2
    ready = status.find(new["conditions"], "Ready")
    assert ready == {
        "type": "Ready",
        "status": "True",
        "reason": "Rendered",
        "message": "msg",
        "lastTransitionTime": T0,
        "observedGeneration": 4,
    }


def test_same_outcome_later_changes_nothing() -> None:
    first = status.build({}, _conds(), SUMMARY, 4, T0)
    again = status.build(first, _conds(), SUMMARY, 4, T1)
    assert again == first
    assert not status.changed(first, again)
    assert status.transitions(first["conditions"], again["conditions"]) == []


def test_transition_time_moves_only_with_the_status() -> None:
    first = status.build({}, _conds(), SUMMARY, 4, T0)
    reason_only = status.build(first, _conds(reason="Other"), SUMMARY, 5, T1)
    assert status.find(reason_only["conditions"], "Ready")["lastTransitionTime"] == T0
    assert status.find(reason_only["conditions"], "Ready")["observedGeneration"] == 5
    flipped = status.build(first, _conds("False", "PolicyViolation"), SUMMARY, 5, T1)
    assert status.find(flipped["conditions"], "Ready")["lastTransitionTime"] == T1
    assert status.find(flipped["conditions"], "Accepted")["lastTransitionTime"] == T0
    moved = status.transitions(first["conditions"], flipped["conditions"])
    assert [c["type"] for c in moved] == ["Ready"]


def test_rejected_spec_keeps_last_rendered_summary() -> None:
    first = status.build({}, _conds(), SUMMARY, 4, T0)
    rejected = status.build(
        first, _conds("False", "InvalidSpec"), status.Summary(None, None, None, None), 5, T1
    )
    assert rejected["configMapName"] == "gwe-chat"
    assert rejected["specHash"] == "sha256:aa"
    assert rejected["observedGeneration"] == 5


def test_foreign_condition_types_are_kept() -> None:
    previous = {"conditions": [{"type": "Audited", "status": "True"}]}
    new = status.build(previous, _conds(), SUMMARY, 1, T0)
    assert [c["type"] for c in new["conditions"]] == [
        "Ready",
        "Accepted",
        "ResolvedRefs",
        "Audited",
    ]
