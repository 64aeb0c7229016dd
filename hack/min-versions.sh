#!/usr/bin/env bash
# Proves pyproject.toml's lower bounds: installs every runtime dependency (and the `demo`
# extra's) at the lowest version its bound allows (uv's lowest-direct resolution) into a
# venv of its own, with the test tools, and runs the unit tests there. A bound that is too
# low fails here, not on a user's machine (it found aiohttp < 3.14 and kopf < 1.45).
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV="${UV:-.venv/bin/uv}"
VENV="${SWITCHYARD_MIN_VENV:-$ROOT/.venv-min}"
[[ -x "$VENV/bin/python" ]] || "$UV" venv -q --python "${PYTHON:-python3.11}" "$VENV"
"$UV" pip compile pyproject.toml --extra demo --resolution lowest-direct --python-version 3.11 -q \
  --no-header -o "$VENV/minimum.txt"
echo "[min-versions] $(grep -cE '^[a-z]' "$VENV/minimum.txt") packages at their lowest allowed versions:" >&2
grep -E '^(aiohttp|pydantic|pyyaml|kopf|prometheus-client|orjson|httptools|aiohappyeyeballs|uvloop|openai|cryptography)==' \
  "$VENV/minimum.txt" | tr '\n' ' ' >&2
echo >&2
# The test tools come at their locked versions (constraints with the lock's markers): only
# the project's own bounds are under test.
tools=(pytest pytest-aiohttp pytest-asyncio pytest-timeout hypothesis scipy)
grep -E "^($(IFS='|'; echo "${tools[*]}"))==" requirements/dev.lock | sed 's/ *\\$//' \
  > "$VENV/tools.txt"
"$UV" pip install -q --python "$VENV/bin/python" -r "$VENV/minimum.txt" \
  -c "$VENV/tools.txt" "${tools[@]}"
"$UV" pip install -q --python "$VENV/bin/python" --no-deps -e .
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/unit "$@"
