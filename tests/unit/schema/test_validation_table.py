"""The Python validator gives the expected verdict, path and message for the shared table."""

from __future__ import annotations

import pytest

from switchyard_schema import validate_manifest
from tests.casetable import Case, cases

INVALID = cases(valid=False)
VALID = cases(valid=True)


def test_table_is_large_enough() -> None:
    assert len(INVALID) >= 30
    assert len(VALID) >= 5


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.name)
def test_invalid_manifest_is_rejected_with_path_and_message(case: Case) -> None:
    problems = validate_manifest(case.manifest)
    assert problems, f"{case.name} was accepted"
    matching = [p for p in problems if p.path == case.path and case.message in p.message]
    assert matching, f"expected {case.path}: ...{case.message}..., got {[str(p) for p in problems]}"


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.name)
def test_valid_manifest_is_accepted(case: Case) -> None:
    assert validate_manifest(case.manifest) == []
