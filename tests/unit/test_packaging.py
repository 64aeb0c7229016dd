"""Honest packaging: the locks satisfy pyproject.toml, the license is shipped, the CLI never
guesses an abbreviated option, and a missing optional dependency names its extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from switchyard_cli import main

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", re.M)


def _pins(lock: str) -> dict[str, set[Version]]:
    pins: dict[str, set[Version]] = {}
    for name, version in PIN.findall((ROOT / "requirements" / lock).read_text()):
        pins.setdefault(_norm(name), set()).add(Version(version))
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(*extras: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    texts = list(project["dependencies"])
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(t) for t in texts]


@pytest.mark.parametrize(("lock", "extras"), [
    ("runtime.lock", ()), ("dev.lock", ("demo", "dev")),
])
def test_every_declared_dependency_is_locked_within_its_bounds(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = _pins(lock)
    for req in _requirements(*extras):
        versions = pins.get(_norm(req.name))
        assert versions, f"{req.name} is declared in pyproject.toml but not in {lock}"
        wrong = [v for v in versions if not req.specifier.contains(v, prereleases=True)]
        assert not wrong, f"{lock} pins {req.name} {wrong}, outside {req.specifier}"


def test_runtime_lock_holds_no_dev_tool() -> None:
    pins = _pins("runtime.lock")
    for tool in ("pytest", "mypy", "ruff", "openai", "mlflow-skinny"):
        assert tool not in pins


def test_license_is_shipped_and_matches_the_metadata() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_options_are_never_abbreviated(capsys: pytest.CaptureFixture[str]) -> None:
    """`--auth x` must not silently mean `--auth-tokens-file x` (argparse prefix matching)."""
    with pytest.raises(SystemExit) as exit_info:
        main.main(["gateway", "--auth-tokens", "/nonexistent"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --auth-tokens" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main.main(["validate", "--no-col", "x.yaml"])
    assert exit_info.value.code == 2


def test_a_missing_optional_dependency_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {'openai'!r}", name="openai")

    monkeypatch.setattr(main.importlib, "import_module", missing)
    with pytest.raises(SystemExit) as exit_info:
        main.main(["demo"])
    assert exit_info.value.code == 2
    assert "pip install 'switchyard[demo]'" in capsys.readouterr().err
