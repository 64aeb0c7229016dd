"""The CRD, its copies and the Python rule twins agree."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from switchyard_schema import crd, models, rules

ROOT = pathlib.Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "crds" / "gatewayendpoints.switchyard.dev.yaml"


def _rules(schema: dict[str, Any]) -> list[str]:
    found = [r["rule"] for r in schema.get("x-kubernetes-validations", [])]
    for child in schema.get("properties", {}).values():
        found += _rules(child)
    if "items" in schema:
        found += _rules(schema["items"])
    return found


def test_packaged_copy_and_chart_copy_equal_crds_folder() -> None:
    source = CRD_FILE.read_bytes()
    assert (ROOT / "common" / "switchyard_schema" / "crd.yaml").read_bytes() == source
    assert (ROOT / "charts" / "switchyard" / "crds" / CRD_FILE.name).read_bytes() == source


def test_every_cel_rule_has_a_python_twin_and_back() -> None:
    in_crd = set(_rules(crd.openapi_schema()))
    assert in_crd == set(rules.TWINS), in_crd ^ set(rules.TWINS)


def test_every_field_has_a_description() -> None:
    def walk(schema: dict[str, Any], path: str) -> list[str]:
        missing = [] if "description" in schema or path.endswith("metadata") else [path]
        for name, child in schema.get("properties", {}).items():
            missing += walk(child, f"{path}.{name}")
        if "items" in schema and schema["items"].get("type") == "object":
            missing += walk(schema["items"], f"{path}[]")
        return missing

    assert walk(crd.openapi_schema()["properties"]["spec"], "spec") == []


def test_every_list_and_string_is_bounded() -> None:
    def walk(schema: dict[str, Any], path: str) -> list[str]:
        bad = []
        if schema.get("type") == "array" and "maxItems" not in schema:
            bad.append(path)
        if schema.get("type") == "string" and not ({"maxLength", "enum"} & set(schema)):
            bad.append(path)
        for name, child in schema.get("properties", {}).items():
            bad += walk(child, f"{path}.{name}")
        if "items" in schema:
            bad += walk(schema["items"], f"{path}[]")
        return bad

    assert walk(crd.openapi_schema()["properties"]["spec"], "spec") == []


def test_enums_match_the_models() -> None:
    spec = crd.openapi_schema()["properties"]["spec"]["properties"]
    provider = spec["trafficSplit"]["items"]["properties"]["provider"]["enum"]
    assert provider == [p.value for p in models.Provider]
    assert spec["task"]["enum"] == [t.value for t in models.Task]
    kinds = spec["policy"]["properties"]["fallbackOn"]["items"]["enum"]
    assert kinds == [k.value for k in models.FailureKind]


def test_crd_identity() -> None:
    doc = yaml.safe_load(CRD_FILE.read_text())
    assert doc["spec"]["group"] == crd.GROUP
    assert doc["spec"]["names"]["shortNames"] == ["gwe"]
    version = doc["spec"]["versions"][0]
    assert version["name"] == crd.VERSION and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Task", "Targets", "Fallbacks", "Ready", "Serving", "Degraded", "Age"]


def test_reference_doc_is_generated_from_the_crd() -> None:
    from switchyard_schema import reference

    assert (ROOT / "docs" / "reference.md").read_text() == reference.render(), (
        "docs/reference.md is stale: python -m switchyard_schema.reference > docs/reference.md"
    )
