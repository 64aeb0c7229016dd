"""validate.py: the CRD rules again plus the platform's allow-lists."""

from __future__ import annotations

from switchyard_operator import validate
from tests.unit.operator.helpers import manifest

OPEN = validate.Policy.from_lists([], ["OPENAI_KEY"])


def test_valid_manifest_with_open_policy() -> None:
    assert validate.check(manifest(), OPEN) == ([], [])


def test_schema_problem_is_reported_with_its_path() -> None:
    obj = manifest()
    obj["spec"]["trafficSplit"][0]["weight"] = 40
    schema, policy = validate.check(obj, OPEN)
    assert [str(p) for p in schema] == [
        "spec.trafficSplit: trafficSplit weights must sum to 100, got 90"
    ]
    assert policy == []


def test_base_url_outside_allow_list() -> None:
    policy = validate.Policy.from_lists(["api.internal", "*.svc.cluster.local"], ["OPENAI_KEY"])
    assert validate.check(manifest(), policy) == ([], [])
    obj = manifest()
    obj["spec"]["fallbacks"][0]["baseUrl"] = "https://evil.example.com/v1"
    _, problems = validate.check(obj, policy)
    assert [p.path for p in problems] == ["spec.fallbacks[0].baseUrl"]
    message = problems[0].message
    assert "'evil.example.com' is not in the operator's allowed baseUrl hosts" in message
    assert "*.svc.cluster.local" in problems[0].message


def test_wildcard_matches_subdomains_only() -> None:
    allowed = frozenset({"*.example.com"})
    assert validate.host_allowed("a.example.com", allowed)
    assert validate.host_allowed("A.B.Example.com.", allowed)
    assert not validate.host_allowed("example.com.evil.org", allowed)
    assert not validate.host_allowed("badexample.com", allowed)
    assert validate.host_allowed("anything", frozenset())


def test_env_var_needs_the_allow_list() -> None:
    _, problems = validate.check(manifest(), validate.Policy())
    assert [p.path for p in problems] == ["spec.fallbacks[1].apiKey.envVar"]
    assert "'OPENAI_KEY' is not in the operator's allowed env keys (none are allowed)" in str(
        problems[0]
    )
    _, problems = validate.check(manifest(), validate.Policy.from_lists([], ["OTHER"]))
    assert "(OTHER)" in problems[0].message
