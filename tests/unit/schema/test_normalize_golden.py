"""Golden files: each example renders to the same canonical endpoint.json, byte for byte.

Regenerate after an intended change with `UPDATE_GOLDEN=1 pytest tests/unit/schema`.
"""

from __future__ import annotations

import os
import pathlib

import pytest
import yaml

from switchyard_schema import (
    canonical_json,
    config_json,
    is_ours,
    load_config,
    normalize,
    parse_endpoint,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "cases" / "render"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _endpoints() -> list[tuple[str, dict[str, object]]]:
    found = []
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if is_ours(doc):
                found.append((f"{path.stem}--{doc['metadata']['name']}", doc))
    return found


def _secret_values() -> set[str]:
    values = set()
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Secret":
                values.update(doc.get("stringData", {}).values())
    return values


@pytest.mark.parametrize(
    ("name", "manifest"), _endpoints(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_example_renders_to_golden(name: str, manifest: dict[str, object]) -> None:
    text = config_json(normalize(parse_endpoint(manifest)))
    golden = GOLDEN / f"{name}.out.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text + "\n")
    assert text + "\n" == golden.read_text()
    assert text == config_json(normalize(parse_endpoint(manifest)))  # stable across calls
    for value in _secret_values():
        assert value not in text


@pytest.mark.parametrize(
    ("name", "manifest"), _endpoints(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_rendered_config_round_trips(name: str, manifest: dict[str, object]) -> None:
    config = normalize(parse_endpoint(manifest))
    assert canonical_json(load_config(config_json(config))) == canonical_json(config)


def test_defaults_are_filled_and_names_assigned() -> None:
    manifest = {
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "GatewayEndpoint",
        "metadata": {"name": "chat"},
        "spec": {
            "trafficSplit": [
                {"provider": "openai", "model": "gpt-5", "weight": 60, "apiKey": {"envVar": "K"}},
                {"provider": "openai", "model": "gpt-5", "weight": 40, "apiKey": {"envVar": "K2"}},
            ],
            "fallbacks": [{"provider": "openai", "model": "gpt-5", "apiKey": {"envVar": "K"}}],
        },
    }
    config = normalize(parse_endpoint(manifest))
    assert config.namespace == "default" and config.task == "chat"
    names = [t.name for t in config.traffic_split] + [t.name for t in config.fallbacks]
    # distinct targets get distinct names; the fallback repeating arm one shares its name
    assert names == ["openai-gpt-5", "openai-gpt-5-2", "openai-gpt-5"]
    assert config.policy.attempt_timeout_seconds == 60
    assert config.spec_hash.startswith("sha256:")


def test_unknown_schema_version_and_extra_fields_are_refused() -> None:
    from switchyard_schema import InvalidEndpoint

    manifest = yaml.safe_load((ROOT / "examples" / "01-ab-split.yaml").read_text())
    good = config_json(normalize(parse_endpoint(manifest)))
    for bad in (
        good.replace('"schemaVersion":1', '"schemaVersion":99'),
        good.replace('"task":"chat"', '"task":"chat","surprise":true'),
        good[:-5],
    ):
        with pytest.raises(InvalidEndpoint):
            load_config(bad)


def test_a_schema_version_bump_changes_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator skips a write when the hash is unchanged: a new payload shape must show
    in the hash, or ConfigMaps rendered by the previous operator would never be rewritten."""
    from switchyard_schema import models

    manifest = yaml.safe_load((ROOT / "examples" / "01-ab-split.yaml").read_text())
    before = normalize(parse_endpoint(manifest)).spec_hash
    monkeypatch.setattr(models, "SCHEMA_VERSION", models.SCHEMA_VERSION + 1)
    after = normalize(parse_endpoint(manifest))
    assert after.schema_version == models.SCHEMA_VERSION
    assert after.spec_hash != before


def test_the_default_base_url_is_written_into_the_payload() -> None:
    """Every default filled (DESIGN.md): the payload says where a target sends, so the
    gateway, the policy and a reader of the ConfigMap need no table of their own."""
    from switchyard_schema import DEFAULT_BASE_URLS, Provider

    manifest = yaml.safe_load((ROOT / "examples" / "01-ab-split.yaml").read_text())
    for target in manifest["spec"]["trafficSplit"]:
        target.pop("baseUrl", None)
    config = normalize(parse_endpoint(manifest))
    for target in config.traffic_split:
        assert target.base_url == DEFAULT_BASE_URLS[Provider(target.provider)]
    assert Provider.OPENAI_COMPATIBLE not in DEFAULT_BASE_URLS
    assert Provider.AZURE_OPENAI not in DEFAULT_BASE_URLS
