"""`switchyard validate`: verdicts, messages and exit codes (run as a real subprocess)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
INVALID = ROOT / "tests" / "cases" / "validation" / "invalid"


def switchyard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchyard_cli.main", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=ROOT,
        check=False,
    )


def test_examples_are_valid() -> None:
    result = switchyard("validate", "examples/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 invalid" in result.stdout
    assert "\033[" not in result.stdout  # not a TTY: no colour codes


def test_invalid_manifest_exits_1_with_path_and_message() -> None:
    result = switchyard("validate", str(INVALID / "weight-zero.yaml"))
    assert result.returncode == 1
    assert "spec.trafficSplit[0].weight: must be between 1 and 100, got 0" in result.stdout
    assert "weights total 100" in result.stdout


def test_sum_is_reported() -> None:
    result = switchyard("validate", str(INVALID / "weights-sum-99.yaml"))
    assert result.returncode == 1
    assert "weights total 99" in result.stdout
    assert "trafficSplit weights must sum to 100, got 99" in result.stdout


def test_missing_file_exits_2_without_traceback() -> None:
    result = switchyard("validate", "does-not-exist.yaml")
    assert result.returncode == 2
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_bad_yaml_exits_2_without_traceback() -> None:
    result = switchyard("validate", "-", stdin="apiVersion: [unclosed\n")
    assert result.returncode == 2
    assert "invalid YAML" in result.stderr and "Traceback" not in result.stderr


def test_other_kinds_are_skipped_and_wrong_versions_of_ours_are_errors() -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
    assert switchyard("validate", "-", stdin=secret).returncode == 0
    wrong = "apiVersion: switchyard.dev/v1\nkind: GatewayEndpoint\nmetadata: {name: c}\nspec: {}\n"
    result = switchyard("validate", "-", stdin=wrong)
    assert result.returncode == 1 and "apiVersion: must be switchyard.dev/v1alpha1" in result.stdout


def test_yaml_is_read_as_kubectl_reads_it() -> None:
    # kubectl (YAML 1.1) reads a bare `y` as a boolean: the API server rejects such a name.
    manifest = (
        "apiVersion: switchyard.dev/v1alpha1\nkind: GatewayEndpoint\nmetadata: {name: c}\n"
        "spec:\n  trafficSplit:\n    - {name: y, provider: openai-compatible, model: m,\n"
        "       baseUrl: 'http://127.0.0.1:1/v1', weight: 100}\n"
    )
    result = switchyard("validate", "-", stdin=manifest)
    assert result.returncode == 1
    assert "spec.trafficSplit[0].name: must be of type string" in result.stdout
    quoted = manifest.replace("name: y,", "name: 'y',")
    assert switchyard("validate", "-", stdin=quoted).returncode == 0
