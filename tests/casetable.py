"""The shared table of valid and invalid GatewayEndpoint manifests.

One table, run through the Python validator (tests/unit/schema) and through the real API
server (tests/e2e/test_api.py), so their verdicts are proven equal. Each invalid case
starts with `# path:`, `# message:` (our wording) and `# apiserver:` (a substring of the
API server's answer) comment lines.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import yaml

CASES = pathlib.Path(__file__).parent / "cases" / "validation"


@dataclasses.dataclass(frozen=True)
class Case:
    """One manifest of the table and what every validator must say about it."""

    name: str
    manifest: dict[str, Any]
    valid: bool
    path: str = ""
    message: str = ""
    apiserver: str = ""


def _load(path: pathlib.Path, valid: bool) -> Case:
    text = path.read_text()
    header = {}
    for line in text.splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(":")
        header[key] = value.strip()  # an empty `# path:` is the object itself
    return Case(path.stem, yaml.safe_load(text), valid, **header)


def cases(valid: bool) -> list[Case]:
    """The valid or the invalid half of the table, sorted by name."""
    folder = CASES / ("valid" if valid else "invalid")
    return [_load(p, valid) for p in sorted(folder.glob("*.yaml"))]
