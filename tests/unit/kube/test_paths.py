"""Path building: every segment escaped, names that are no object refused."""

from __future__ import annotations

import pytest

from switchyard_kube import paths


def test_core_and_group_collections() -> None:
    assert paths.collection_path("v1", "secrets") == "/api/v1/secrets"
    assert paths.collection_path("v1", "configmaps", namespace="team-a") == (
        "/api/v1/namespaces/team-a/configmaps")
    assert paths.collection_path("switchyard.dev/v1alpha1", "gatewayendpoints",
                                 namespace="n") == (
        "/apis/switchyard.dev/v1alpha1/namespaces/n/gatewayendpoints")


def test_object_and_subresource() -> None:
    assert paths.object_path("switchyard.dev/v1alpha1", "gatewayendpoints", "chat",
                             namespace="n", subresource="status") == (
        "/apis/switchyard.dev/v1alpha1/namespaces/n/gatewayendpoints/chat/status")
    assert paths.object_path("coordination.k8s.io/v1", "leases", "op", namespace="sy") == (
        "/apis/coordination.k8s.io/v1/namespaces/sy/leases/op")


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("team-b/secrets/x", "team-b%2Fsecrets%2Fx"),
        ("../../team-b/secrets/b-key", "..%2F..%2Fteam-b%2Fsecrets%2Fb-key"),
        ("a?watch=true", "a%3Fwatch%3Dtrue"),
        ("a#frag", "a%23frag"),
        ("a%2Fb", "a%252Fb"),  # an escape in the input is data, not an escape
        ("sp ace", "sp%20ace"),
    ],
)
def test_every_name_stays_one_segment(name: str, escaped: str) -> None:
    path = paths.object_path("v1", "secrets", name, namespace="team-a")
    assert path == f"/api/v1/namespaces/team-a/secrets/{escaped}"
    assert path.count("/") == 6


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_names_that_address_no_object_are_refused(bad: str) -> None:
    with pytest.raises(paths.InvalidPathSegment):
        paths.object_path("v1", "secrets", bad, namespace="n")
    if bad:
        with pytest.raises(paths.InvalidPathSegment):
            paths.collection_path("v1", "secrets", namespace=bad)
        with pytest.raises(paths.InvalidPathSegment):
            paths.object_path("v1", "secrets", "x", namespace="n", subresource=bad)


def test_namespace_is_escaped_too() -> None:
    assert paths.collection_path("v1", "secrets", namespace="a/b") == (
        "/api/v1/namespaces/a%2Fb/secrets")


@pytest.mark.parametrize(("api", "resource"), [("v1/../x", "secrets"), ("v1", "se/crets"),
                                               ("", "secrets"), ("v1", "")])
def test_constants_are_checked(api: str, resource: str) -> None:
    with pytest.raises(ValueError):
        paths.collection_path(api, resource)
