#!/usr/bin/env bash
# The whole benchmark from a fresh clone: project venv, wrk + nginx (apt), pinned peers
# (own venvs under ~/.cache/switchyard/bench-venvs), then `python -m bench "$@"`, which
# prints the markdown and writes docs/benchmarks.md. Needs root for apt-get and 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$("$ROOT/hack/venv.sh" | tail -n 1)"
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cd "$ROOT"
exec "$BIN/python" -m bench "$@"
