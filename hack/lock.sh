#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml: requirements/runtime.lock (what the image
# installs) and requirements/dev.lock (what the venv, and so CI, installs). Both are universal
# (any platform, Python >= 3.11) and carry hashes. Run after changing a dependency.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV="${UV:-.venv/bin/uv}"
common=(--universal --python-version 3.11 --generate-hashes --custom-compile-command hack/lock.sh -q)
"$UV" pip compile pyproject.toml "${common[@]}" -o requirements/runtime.lock
"$UV" pip compile pyproject.toml --extra dev "${common[@]}" -o requirements/dev.lock
