"""Where the control plane's binaries come from: `hack/controlplane/build.sh`.

The script builds etcd, kube-apiserver, kube-controller-manager, kubectl and helm from
pinned Go modules with the machine's Go, caches them outside the repository and prints
the bin folder on its last stdout line (progress goes to stderr). This module runs it,
or takes an explicit folder, and turns its failures into typed errors.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

#: Environment variable naming a folder that already holds the binaries (skips the build).
BIN_DIR_ENV = "SWITCHYARD_K8S_BIN"
#: The binaries a control plane needs (helm is built too, but only the chart tests use it).
REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
_GO_MISSING_STATUS = 3  # build.sh's exit status when `go` is not on PATH
_REPO_ROOT = Path(__file__).resolve().parents[2]


class BinariesUnavailable(RuntimeError):
    """The control plane's binaries are neither cached nor buildable here."""


class GoNotFound(BinariesUnavailable):
    """No Go toolchain on PATH, so the binaries cannot be built."""


class BuildFailed(BinariesUnavailable):
    """build.sh ran and failed; the message ends with its output."""


def build_script(repo_root: Path = _REPO_ROOT) -> Path:
    return repo_root / "hack" / "controlplane" / "build.sh"


def locate(
    bin_dir: Path | str | None = None,
    progress: Callable[[str], None] | None = None,
    repo_root: Path = _REPO_ROOT,
) -> Path:
    """Return the folder holding the binaries, building them if needed.

    An explicit `bin_dir` (or $SWITCHYARD_K8S_BIN) is checked, never built.
    Otherwise build.sh runs (it reuses its cache; a cold build takes minutes) and each of
    its progress lines is passed to `progress`. Raises GoNotFound or BuildFailed.
    """
    explicit = bin_dir or os.environ.get(BIN_DIR_ENV)
    if explicit:
        return _checked(Path(explicit))
    script = build_script(repo_root)
    if not script.is_file():
        raise BinariesUnavailable(
            f"{script} not found (switchyard_testing runs from a source checkout); "
            f"set {BIN_DIR_ENV} to a folder with {', '.join(REQUIRED)}"
        )
    return _checked(_run_build(script, progress))


def _run_build(script: Path, progress: Callable[[str], None] | None) -> Path:
    proc = subprocess.Popen(
        ["bash", str(script)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    err_lines: list[str] = []

    def pump_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line.rstrip("\n"))
            if progress is not None:
                progress(line.rstrip("\n"))

    pump = threading.Thread(target=pump_stderr, daemon=True)
    pump.start()
    out = proc.stdout.read()
    status = proc.wait()
    pump.join()
    if status == _GO_MISSING_STATUS:
        raise GoNotFound(
            "Go is not installed: building the local Kubernetes control plane needs Go >= 1.26 "
            "on PATH"
        )
    lines = out.strip().splitlines()
    if status != 0 or not lines:
        tail = "\n".join(err_lines[-30:])
        raise BuildFailed(f"{script} failed with status {status}:\n{tail}")
    return Path(lines[-1].strip())


def _checked(folder: Path) -> Path:
    missing = [name for name in REQUIRED if not os.access(folder / name, os.X_OK)]
    if missing:
        raise BinariesUnavailable(f"{folder} lacks the executables {', '.join(missing)}")
    return folder
