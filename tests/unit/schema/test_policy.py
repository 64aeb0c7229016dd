"""switchyard_schema.policy: host rules with ports, env keys bound to hosts, both flag syntaxes."""

from __future__ import annotations

import pytest

from switchyard_schema import normalize, parse_endpoint
from switchyard_schema.policy import (
    DEFAULT_HOSTS,
    HostRule,
    PlatformPolicy,
    PolicySyntaxError,
    config_problems,
    destination,
    host_allowed,
    parse_env_bindings,
    parse_host,
    spec_problems,
)
from tests.unit.operator.helpers import manifest


def test_wildcard_matches_subdomains_only() -> None:
    allowed = [parse_host("*.example.com")]
    assert host_allowed("a.example.com", 443, allowed)
    assert host_allowed("A.B.Example.com.", 80, allowed)
    assert not host_allowed("example.com.evil.org", 443, allowed)
    assert not host_allowed("badexample.com", 443, allowed)
    assert not host_allowed("example.com", 443, allowed)
    assert host_allowed("anything", 1, [])


def test_an_entry_with_a_port_allows_only_that_port() -> None:
    rule = parse_host("vllm.models:8000")
    assert rule == HostRule("vllm.models", 8000)
    policy = PlatformPolicy.parse("vllm.models:8000", "")
    ok = PlatformPolicy.parse("vllm.models", "")
    spec = {"trafficSplit": [{"provider": "openai-compatible", "model": "m", "weight": 100,
                              "baseUrl": "http://vllm.models:8000/v1"}]}
    assert spec_problems(spec, policy) == []
    spec["trafficSplit"][0]["baseUrl"] = "http://vllm.models:8001/v1"
    assert [p.path for p in spec_problems(spec, policy)] == ["spec.trafficSplit[0].baseUrl"]
    assert spec_problems(spec, ok) == []  # no port named: any port
    spec["trafficSplit"][0]["baseUrl"] = "http://vllm.models/v1"  # port 80 by scheme
    assert spec_problems(spec, policy) != []


def test_ipv6_and_default_ports() -> None:
    assert parse_host("[::1]:8000") == HostRule("::1", 8000)
    assert str(HostRule("::1", 8000)) == "[::1]:8000"
    assert destination("openai", None) == destination("openai", "https://api.openai.com/v1")
    assert destination("openai-compatible", None).error
    assert destination("openai", "ftp://x/").error


@pytest.mark.parametrize("bad", ["a/b", "user@host", "*", "a.*.com", "host:notaport"])
def test_malformed_host_entries_are_refused(bad: str) -> None:
    with pytest.raises(PolicySyntaxError):
        parse_host(bad)


def test_env_bindings_syntax() -> None:
    bound = parse_env_bindings(["OPENAI_API_KEY=api.openai.com|*.openai.azure.com:443", " "])
    assert bound == {"OPENAI_API_KEY": (HostRule("*.openai.azure.com", 443),
                                        HostRule("api.openai.com"))}
    with pytest.raises(PolicySyntaxError, match="bind the env var"):
        parse_env_bindings(["OPENAI_API_KEY"])
    with pytest.raises(PolicySyntaxError):
        parse_env_bindings(["=api.openai.com"])
    assert PlatformPolicy.parse("", None).env_keys is None
    assert PlatformPolicy.parse("", "").env_keys == {}


def test_env_key_goes_only_to_its_hosts_including_the_provider_default() -> None:
    policy = PlatformPolicy.parse("", "OPENAI_KEY=api.openai.com")
    config = normalize(parse_endpoint(manifest()))
    assert config_problems(config, policy) == []
    obj = manifest()
    obj["spec"]["fallbacks"][1]["provider"] = "mistral"  # default host api.mistral.ai
    problems = config_problems(normalize(parse_endpoint(obj)), policy)
    assert [p.path for p in problems] == ["fallbacks[1].apiKey.envVar"]
    assert "api.mistral.ai:443" in problems[0].message


def test_default_hosts_are_the_default_base_urls_hosts() -> None:
    assert dict(DEFAULT_HOSTS) == {
        "openai": "api.openai.com",
        "anthropic": "api.anthropic.com",
        "gemini": "generativelanguage.googleapis.com",
        "mistral": "api.mistral.ai",
    }
