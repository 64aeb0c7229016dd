#!/usr/bin/env bash
# Creates (or refreshes) the project venv in .venv with the project and its dev tools.
# Re-installs only when pyproject.toml changed since the last install (stamp file).
# Prints the venv's bin folder on its last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SWITCHYARD_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[venv] creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.switchyard-installed"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  echo "[venv] installing switchyard and its dev dependencies (first run: a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]" >&2
  echo "$WANT" > "$STAMP"
fi
echo "$VENV/bin"
