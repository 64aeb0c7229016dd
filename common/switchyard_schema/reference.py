"""Render the GatewayEndpoint field reference (docs/reference.md) from the CRD schema.

Generated, so the reference cannot drift from the CRD: a unit test compares the committed
file with this output. Regenerate with `python -m switchyard_schema.reference > docs/reference.md`.
"""

from __future__ import annotations

from typing import Any

from switchyard_schema import crd


def _type(schema: dict[str, Any]) -> str:
    kind = str(schema.get("type", "object"))
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    return kind


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    for key, word in (("minimum", "min"), ("maximum", "max"), ("minItems", "min items"),
                      ("maxItems", "max items"), ("minLength", "min length"),
                      ("maxLength", "max length")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    return "; ".join(parts)


def _rows(schema: dict[str, Any], path: str, required: bool, out: list[str]) -> None:
    desc = " ".join(str(schema.get("description", "")).split()).replace("|", "\\|")
    out.append(f"| `{path}` | {_type(schema)} | {'yes' if required else ''} | "
               f"{_constraints(schema)} | {desc} |")
    target = schema.get("items", {}) if schema.get("type") == "array" else schema
    needed = set(target.get("required", []))
    suffix = "[]" if schema.get("type") == "array" else ""
    for name, child in target.get("properties", {}).items():
        _rows(child, f"{path}{suffix}.{name}", name in needed, out)


def _rules(schema: dict[str, Any], path: str, out: list[str]) -> None:
    for rule in schema.get("x-kubernetes-validations", []):
        message = rule.get("message") or rule.get("messageExpression", "")
        out.append(f"- on `{path or '(object)'}`: {message}  \n  CEL: `{rule['rule']}`")
    target = schema.get("items", {}) if schema.get("type") == "array" else schema
    suffix = "[]" if schema.get("type") == "array" else ""
    for name, child in target.get("properties", {}).items():
        _rules(child, f"{path}{suffix}.{name}".lstrip("."), out)


def render() -> str:
    """The whole reference page as Markdown."""
    root = crd.openapi_schema()
    lines = [
        "# GatewayEndpoint reference",
        "",
        f"`apiVersion: {crd.API_VERSION}`, `kind: {crd.KIND}` (short name `gwe`), namespaced.",
        "Generated from `crds/` by `python -m switchyard_schema.reference`; do not edit by hand.",
        "",
        "## Fields",
        "",
        "| field | type | required | constraints | description |",
        "|---|---|---|---|---|",
    ]
    _rows(root["properties"]["spec"], "spec", True, lines)
    lines += ["", "## Status (written by the operator)", "",
              "| field | type | required | constraints | description |", "|---|---|---|---|---|"]
    _rows(root["properties"]["status"], "status", False, lines)
    lines += ["", "## Validation rules (checked at admission by the API server)", ""]
    _rules(root, "", lines)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
