#!/usr/bin/env bash
# Creates (or refreshes) the project venv in .venv with the project and its dev tools, at
# the versions pinned (with hashes) in requirements/dev.lock, so CI tests what the lock says,
# not whatever is newest that day. Re-installs only when pyproject.toml or the lock changed
# since the last install (stamp file).
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
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements/dev.lock" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  echo "[venv] installing switchyard and its dev dependencies (first run: a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements/dev.lock" >&2
  "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT" >&2
  echo "$WANT" > "$STAMP"
fi
echo "$VENV/bin"
