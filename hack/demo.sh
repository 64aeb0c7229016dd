#!/usr/bin/env bash
# Runs `switchyard demo` from a fresh clone: installs the venv and the control plane first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$(hack/venv.sh | tail -n1)"
exec "$BIN/switchyard" demo "$@"
