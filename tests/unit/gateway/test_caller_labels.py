"""The per-caller-namespace label stays bounded (`http/kube_auth.CallerLabels`)."""

from __future__ import annotations

from switchyard_gateway.http.kube_auth import TOKEN_FILE_CALLER, CallerLabels
from switchyard_gateway.identity import Caller


def sa(namespace: str) -> Caller:
    return Caller(username=f"system:serviceaccount:{namespace}:app")


def test_namespaces_past_the_bound_are_counted_as_other() -> None:
    labels = CallerLabels(limit=3)
    assert [labels(sa(f"ns-{i}")) for i in range(5)] == [
        "ns-0", "ns-1", "ns-2", "other", "other"]
    assert labels(sa("ns-1")) == "ns-1"  # a namespace already seen keeps its label


def test_non_service_account_users_and_file_tokens() -> None:
    labels = CallerLabels()
    assert labels(Caller(username="alice")) == "other"
    assert labels(Caller(username="system:serviceaccount:Bad_NS:app")) == "other"
    assert labels(Caller(username="system:serviceaccount:a:b:c")) == "other"
    assert labels(TOKEN_FILE_CALLER) == "none"
