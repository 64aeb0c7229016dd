#!/usr/bin/env bash
# The whole test suite, from a fresh clone: venv + dependencies, the Go-built control plane
# (cached in ~/.cache/switchyard), lint (ruff), types (mypy), layering (import-linter),
# the unit tests again on the lowest dependency versions pyproject.toml allows, then pytest:
# unit, integration (real HTTP servers), e2e (real kube-apiserver) and, as root, node (a
# real kubelet + containerd node; hack/node/build.sh, docs/testing.md).
# Extra arguments go to pytest, e.g. hack/test.sh tests/unit -k weights
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="$(hack/venv.sh | tail -n1)"

echo "== control plane (kube-apiserver, etcd, kube-controller-manager, kubectl, helm)" >&2
if command -v go >/dev/null 2>&1; then
  SWITCHYARD_K8S_BIN="$(hack/controlplane/build.sh | tail -n1)"
  export SWITCHYARD_K8S_BIN
elif [[ -n "${CI:-}" ]]; then
  echo "CI: Go is required to build the control plane for the e2e tests" >&2
  exit 1
else
  echo "Go not found: e2e tests will be skipped (install Go >= 1.26, or set SWITCHYARD_E2E_KUBECONFIG)" >&2
fi

echo "== local node (kubelet, kube-proxy, kube-scheduler, containerd, CNI, CoreDNS)" >&2
if [[ -n "${SWITCHYARD_K8S_BIN:-}" && "$(id -u)" -eq 0 ]]; then
  missing=()
  for pkg in runc iptables mmdebstrap buildah; do
    command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
  hack/node/build.sh >/dev/null
  export SWITCHYARD_NODE=1  # tests/node: its images are built when pytest has collected
else
  echo "not root, or no control plane: the node tests (tests/node) will be skipped" >&2
fi

if [[ -n "${CI:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
  echo "== chromium (the status page test renders /ui headless)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi

echo "== ruff" >&2
"$BIN/ruff" check common operator gateway cli testkit tests bench
echo "== mypy" >&2
"$BIN/mypy"
echo "== import-linter" >&2
"$BIN/lint-imports"

echo "== minimum versions (pyproject's lower bounds, unit tests)" >&2
UV="$BIN/uv" hack/min-versions.sh

echo "== pytest" >&2
set +e
"$BIN/pytest" "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit $code
