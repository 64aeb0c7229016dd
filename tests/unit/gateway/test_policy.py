"""`policy.fallbackOn`: which failures fall back (isinstance on the error kinds)."""

from __future__ import annotations

import dataclasses

import pytest

from switchyard_gateway import errors
from switchyard_gateway.routing import policy
from switchyard_schema import FailureKind
from tests.unit.gateway.endpoints import compiled

ALL = compiled().policy

CASES = [
    (errors.RateLimited("x", retry_after=2), FailureKind.RATE_LIMIT),
    (errors.UpstreamServerError("x", upstream_status=529), FailureKind.SERVER_ERROR),
    (errors.UpstreamTimeout("x"), FailureKind.TIMEOUT),
    (errors.UpstreamConnectionError("x"), FailureKind.CONNECTION_ERROR),
    (errors.ProviderAuthError("x", upstream_status=401), FailureKind.PROVIDER_AUTH),
    (errors.MissingCredential("x"), FailureKind.PROVIDER_AUTH),
    (errors.ContextLengthExceeded("x", upstream_status=400), FailureKind.CONTEXT_LENGTH),
]
EVERY = dataclasses.replace(ALL, fallback_on=frozenset(FailureKind))


@pytest.mark.parametrize(("error", "kind"), CASES)
def test_each_kind_falls_back_only_when_named(error: errors.UpstreamError,
                                              kind: FailureKind) -> None:
    assert policy.falls_back(EVERY, error)
    only = dataclasses.replace(ALL, fallback_on=frozenset({kind}))
    assert policy.falls_back(only, error)
    others = dataclasses.replace(ALL, fallback_on=frozenset(set(FailureKind) - {kind}))
    assert not policy.falls_back(others, error)


def test_caller_fault_never_falls_back() -> None:
    fault = errors.CallerFault("bad", upstream_status=400)
    assert not policy.falls_back(ALL, fault)


def test_default_policy_names_every_kind_but_context_length() -> None:
    assert frozenset(FailureKind) - {FailureKind.CONTEXT_LENGTH} == ALL.fallback_on
    assert not policy.falls_back(ALL, errors.ContextLengthExceeded("x", upstream_status=400))


def test_breaker_counts_upstream_failures_only() -> None:
    assert policy.trips_breaker(errors.UpstreamServerError("x"))
    assert policy.trips_breaker(errors.RateLimited("x"))
    assert not policy.trips_breaker(errors.MissingCredential("x"))
    assert not policy.trips_breaker(errors.CallerFault("x", upstream_status=422))
    assert not policy.trips_breaker(errors.ContextLengthExceeded("x", upstream_status=400))
