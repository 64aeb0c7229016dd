"""Walk an OpenAPI v3 structural schema the way the Kubernetes API server does.

This is what lets `switchyard validate` give the API server's verdicts offline from the
one CRD: types, required fields, enums, bounds, patterns, unknown fields (rejected, as
`kubectl apply`'s strict field validation does), then the CEL rules through their Python
twins in `rules.py`. Messages are our own words; paths are the API server's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from switchyard_schema import problems as problems_
from switchyard_schema.problems import Problem

#: Evaluates one `x-kubernetes-validations` entry on a value: a message when it fails.
RuleCheck = Callable[[dict[str, Any], Any], "str | None"]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def type_name(value: Any) -> str:
    """Name a JSON value's type the way the API server's messages do."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(schema_type: str, value: Any) -> bool:
    if isinstance(value, bool) and schema_type in ("integer", "number"):
        return False
    if schema_type == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES[schema_type])


class Walker:
    """Validates a value against a schema; collects problems and runs rules through `check`."""

    def __init__(self, check: RuleCheck) -> None:
        self._check = check
        self.problems: list[Problem] = []
        # Type errors and missing fields make CEL rules above them meaningless; bounds
        # errors do not, so rules still run past those (as the API server's do).
        self._unsound = 0

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def walk(self, schema: dict[str, Any], value: Any, path: str) -> None:
        """Validate `value`; rules run only where the structure below them is sound."""
        before = self._unsound
        schema_type = schema.get("type")
        if schema_type and not _type_ok(schema_type, value):
            self.add(path, f"must be of type {schema_type}, got {type_name(value)}")
            self._unsound += 1
            return
        if isinstance(value, dict):
            self._walk_object(schema, value, path)
        elif isinstance(value, list):
            self._walk_array(schema, value, path)
        else:
            self._walk_scalar(schema, value, path)
        if self._unsound == before:
            self._rules(schema, value, path)

    def _walk_object(self, schema: dict[str, Any], value: dict[str, Any], path: str) -> None:
        props: dict[str, Any] = schema.get("properties", {})
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        for key in schema.get("required", []):
            if key not in value:
                self.add(problems_.join(path, key), "required field is missing")
                self._unsound += 1
        for key, child in value.items():
            child_path = problems_.join(path, key)
            if key in props:
                self.walk(props[key], child, child_path)
            elif not preserve and props:
                self.add(child_path, "unknown field")

    def _walk_array(self, schema: dict[str, Any], value: list[Any], path: str) -> None:
        n = len(value)
        if "minItems" in schema and n < schema["minItems"]:
            self.add(path, f"must have at least {schema['minItems']} item(s), got {n}")
        if "maxItems" in schema and n > schema["maxItems"]:
            self.add(path, f"must have at most {schema['maxItems']} items, got {n}")
            return  # the API server does not look inside an overlong list either
        if schema.get("x-kubernetes-list-type") == "set":
            seen: list[Any] = []
            for i, item in enumerate(value):
                if item in seen:
                    self.add(problems_.join(path, i), f"duplicate value {item!r}")
                seen.append(item)
        items = schema.get("items")
        if items:
            for i, item in enumerate(value):
                self.walk(items, item, problems_.join(path, i))

    def _walk_scalar(self, schema: dict[str, Any], value: Any, path: str) -> None:
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(str(v) for v in schema["enum"])
            self.add(path, f"must be one of {allowed}, got {value!r}")
            return
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                self.add(path, f"must be at least {schema['minLength']} character(s) long")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                self.add(
                    path, f"must be at most {schema['maxLength']} characters, got {len(value)}"
                )
            pattern = schema.get("pattern")
            if pattern and not re.search(pattern, value):
                self.add(path, f"must match the pattern {pattern}, got {value!r}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                self.add(path, f"must be at least {schema['minimum']}, got {value}")
            if "maximum" in schema and value > schema["maximum"]:
                self.add(path, f"must be at most {schema['maximum']}, got {value}")

    def _rules(self, schema: dict[str, Any], value: Any, path: str) -> None:
        for rule in schema.get("x-kubernetes-validations", []):
            message = self._check(rule, value)
            if message is not None:
                field = rule.get("fieldPath", "")
                self.add((path + field).lstrip(".") if field else path, message)
