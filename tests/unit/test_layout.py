"""The tree shows who depends on whom (issue 16): the design card's `operator/` and
`gateway/` hold only their part; what both parts import, the CLI that joins them and the
test kit each have a top-level import root of their own. import-linter (`.importlinter`)
keeps the imports in line with it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = {
    "common": {"switchyard_schema", "switchyard_kube"},  # imported by both parts
    "operator": {"switchyard_operator"},
    "gateway": {"switchyard_gateway"},
    "cli": {"switchyard_cli"},  # the one package that imports both parts
    "testkit": {"switchyard_testing"},  # fakes and the local cluster, for tests and demo
}


def test_each_import_root_holds_only_its_packages() -> None:
    for folder, packages in LAYOUT.items():
        found = {p.name for p in (ROOT / folder).iterdir()
                 if p.is_dir() and (p / "__init__.py").exists()}
        assert found == packages, folder


def test_packaging_and_tools_know_every_root() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots = set(LAYOUT)
    assert set(config["tool"]["setuptools"]["packages"]["find"]["where"]) == roots
    assert set(config["tool"]["mypy"]["mypy_path"]) == roots
    assert roots <= set(config["tool"]["ruff"]["src"])
