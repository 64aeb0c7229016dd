"""validate.py: the CRD rules again plus the platform's policy (`switchyard_schema.policy`)."""

from __future__ import annotations

import pytest

from switchyard_operator import validate
from switchyard_schema import Problem
from switchyard_schema.policy import PlatformPolicy
from tests.unit.operator.helpers import manifest

OPEN = PlatformPolicy.parse("", "OPENAI_KEY=api.openai.com")


def test_valid_manifest_with_open_policy() -> None:
    verdict = validate.check(manifest(), OPEN)
    assert (verdict.schema, verdict.policy) == ([], [])
    assert verdict.endpoint is not None and verdict.endpoint.name == manifest()["metadata"]["name"]


def test_schema_problem_is_reported_with_its_path() -> None:
    obj = manifest()
    obj["spec"]["trafficSplit"][0]["weight"] = 40
    verdict = validate.check(obj, OPEN)
    schema, policy = verdict.schema, verdict.policy
    assert verdict.endpoint is None
    assert [str(p) for p in schema] == [
        "spec.trafficSplit: trafficSplit weights must sum to 100, got 90"
    ]
    assert policy == []


def test_base_url_outside_allow_list() -> None:
    policy = PlatformPolicy.parse(
        "api.internal,*.svc.cluster.local", "OPENAI_KEY=api.openai.com"
    )
    assert validate.check(manifest(), policy).problems == []
    obj = manifest()
    obj["spec"]["fallbacks"][0]["baseUrl"] = "https://evil.example.com/v1"
    problems = validate.check(obj, policy).policy
    assert [p.path for p in problems] == ["spec.fallbacks[0].baseUrl"]
    message = problems[0].message
    assert "'evil.example.com' (port 443) is not in the platform's allowed baseUrl hosts" in message
    assert "*.svc.cluster.local" in problems[0].message


def test_env_var_needs_the_allow_list() -> None:
    problems = validate.check(manifest(), PlatformPolicy()).policy
    assert [p.path for p in problems] == ["spec.fallbacks[1].apiKey.envVar"]
    assert "'OPENAI_KEY' is not in the platform's allowed env keys (none are allowed)" in str(
        problems[0]
    )
    problems = validate.check(manifest(), PlatformPolicy.parse("", "OTHER=api.openai.com")).policy
    assert "(OTHER)" in problems[0].message


def test_env_key_exfiltration_to_own_base_url_is_a_policy_violation() -> None:
    """The attack of issue 14: an allowed env key, sent to a host the tenant chose."""
    obj = manifest()
    obj["spec"]["fallbacks"][1]["baseUrl"] = "http://127.0.0.1:9999/v1"
    problems = validate.check(obj, OPEN).policy
    assert [p.path for p in problems] == ["spec.fallbacks[1].apiKey.envVar"]
    assert "'OPENAI_KEY' is bound to api.openai.com" in problems[0].message
    assert "127.0.0.1:9999" in problems[0].message


def test_secret_name_traversal_is_a_schema_problem() -> None:
    obj = manifest()
    obj["spec"]["trafficSplit"][0]["apiKey"]["secretKeyRef"]["name"] = "../../team-b/secrets/b"
    schema = validate.check(obj, OPEN).schema
    assert [p.path for p in schema] == ["spec.trafficSplit[0].apiKey.secretKeyRef.name"]


def test_a_manifest_is_walked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CRD walk is the costly part of a reconcile at scale: once, not once to judge and
    again to parse."""
    import importlib

    walk = importlib.import_module("switchyard_schema.validate")
    calls: list[object] = []
    real = walk.validate_manifest

    def counted(obj: object) -> list[Problem]:
        calls.append(obj)
        return real(obj)

    monkeypatch.setattr(walk, "validate_manifest", counted)
    verdict = validate.check(manifest(), OPEN)
    assert verdict.endpoint is not None and calls and len(calls) == 1
