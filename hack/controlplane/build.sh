#!/usr/bin/env bash
# Builds the local Kubernetes control plane used by the e2e tests and `switchyard demo`:
# kube-apiserver, kube-controller-manager and kubectl (k8s.io/kubernetes), etcd
# (go.etcd.io/etcd/server/v3) and helm, from the pinned wrapper modules beside this
# script, with the machine's own Go (GOTOOLCHAIN=local). No binary is downloaded: only
# Go modules from the module proxy.
#
# Output: $SWITCHYARD_CACHE/k8s-v$K8S_VERSION/bin (default ~/.cache/switchyard/...).
# A binary already there is reused; delete the folder to force a rebuild.
# Prints the bin folder on its last line of stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="1.36.3"
ETCD_VERSION="3.6.16"
HELM_VERSION="3.22.0"
CACHE="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}"
BIN="$CACHE/k8s-v$K8S_VERSION/bin"
mkdir -p "$BIN"

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-trimpath -buildvcs=false -mod=mod"

log() { echo "[controlplane] $*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "Go toolchain not found: install Go >= 1.26 to build the control plane"
  exit 3
fi

# The API server and the controller manager report this version (Helm's kubeVersion
# checks and `kubectl version` read it), exactly as the release build stamps it.
k8s_ldflags() {
  local major="${K8S_VERSION%%.*}" rest="${K8S_VERSION#*.}"
  local minor="${rest%%.*}"
  local date="2026-01-01T00:00:00Z"
  local x=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    x+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  echo "-s -w$x"
}

build() {  # build <module dir> <package> <output name> <ldflags>
  local dir="$1" pkg="$2" out="$3" ldflags="$4"
  if [[ -x "$BIN/$out" ]]; then
    log "reusing cached $out"
    return
  fi
  local start=$SECONDS
  log "building $out from $pkg (cold builds take several minutes on 2 cores)..."
  (cd "$HERE/$dir" && go build -ldflags "$ldflags" -o "$BIN/$out.tmp" "$pkg")
  mv "$BIN/$out.tmp" "$BIN/$out"
  log "built $out in $((SECONDS - start))s"
}

build etcd go.etcd.io/etcd/server/v3 etcd \
  "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION"
build k8s k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$(k8s_ldflags)"
build k8s k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$(k8s_ldflags)"
build k8s k8s.io/kubernetes/cmd/kubectl kubectl "$(k8s_ldflags)"
# Helm's release build also stamps the Kubernetes version that `helm template` assumes
# without --kube-version (one minor above its client-go's v0.x, as helm's Makefile derives
# it); without the stamp helm assumes 1.20 and refuses charts that need a newer one.
helm_ldflags() {
  local client_go major minor
  client_go="$(cd "$HERE/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)"  # v0.37.0
  client_go="${client_go#v}"
  major=$(( ${client_go%%.*} + 1 ))
  minor="${client_go#*.}"; minor="${minor%%.*}"
  local x="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  x+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    x+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
  done
  echo "$x"
}

# The Kubernetes version a cached helm assumes; a helm built before the stamp says v1.20.0.
helm_kube_version() {
  local chart
  chart="$(mktemp -d)"
  mkdir -p "$chart/templates"
  printf 'apiVersion: v2\nname: probe\nversion: 0.0.0\n' > "$chart/Chart.yaml"
  printf 'kube: {{ .Capabilities.KubeVersion.Version }}\n' > "$chart/templates/probe.yaml"
  "$BIN/helm" template probe "$chart" 2>/dev/null | sed -n 's/^kube: //p'
  rm -rf "$chart"
}

if [[ -x "$BIN/helm" && "$(helm_kube_version)" == "v1.20.0" ]]; then
  log "cached helm lacks the Kubernetes version stamp: rebuilding it"
  rm -f "$BIN/helm"
fi
build helm helm.sh/helm/v3/cmd/helm helm "$(helm_ldflags)"

echo "$BIN"
