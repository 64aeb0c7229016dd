#!/usr/bin/env bash
# Builds the local node that tests/node runs pods on, beside the control plane of
# hack/controlplane/build.sh: kube-scheduler, kubelet and kube-proxy (k8s.io/kubernetes, from
# the same pinned wrapper module), containerd 2.x with its runc shim and ctr, the CNI plugins
# (bridge, host-local, loopback, portmap) and CoreDNS, all from Go modules with the machine's
# own Go (GOTOOLCHAIN=local), plus the pause program of the sandbox image. runc comes from
# Debian (`apt-get install runc`); no binary is downloaded.
#
# Output: $SWITCHYARD_CACHE/k8s-v$K8S_VERSION/bin (binaries beside the control plane's) and
# .../node/ (CNI plugins). A binary already there is reused; delete it to force a rebuild.
# Logs each build's time; prints the bin folder on its last line of stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="1.36.3"
CONTAINERD_VERSION="2.4.2"
CNI_PLUGINS_VERSION="1.9.1"
COREDNS_VERSION="1.14.7"
CACHE="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}"
BIN="$CACHE/k8s-v$K8S_VERSION/bin"
CNI_BIN="$CACHE/k8s-v$K8S_VERSION/cni"
mkdir -p "$BIN" "$CNI_BIN"

export GOTOOLCHAIN=local
export CGO_ENABLED=0

log() { echo "[node] $*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "Go toolchain not found: install Go >= 1.26 to build the node"
  exit 3
fi

k8s_ldflags() {  # the same version stamp as hack/controlplane/build.sh
  local major="${K8S_VERSION%%.*}" rest="${K8S_VERSION#*.}"
  local minor="${rest%%.*}" x=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    x+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
  done
  echo "-s -w$x"
}

timed() {  # timed <output path> <command...>: run unless the output exists, log the time
  local out="$1"; shift
  if [[ -x "$out" ]]; then log "reusing cached $(basename "$out")"; return; fi
  local start=$SECONDS
  log "building $(basename "$out")..."
  "$@"
  log "built $(basename "$out") in $((SECONDS - start))s"
}

k8s() {  # k8s <command>
  (cd "$HERE/../controlplane/k8s" && GOFLAGS="-trimpath -buildvcs=false -mod=mod" \
    go build -ldflags "$(k8s_ldflags)" -o "$BIN/$1.tmp" "k8s.io/kubernetes/cmd/$1" \
    && mv "$BIN/$1.tmp" "$BIN/$1")
}

install_into() {  # install_into <dir> <tags> <package@version...>: go install, static
  local dir="$1" tags="$2"; shift 2
  GOBIN="$dir" GOFLAGS="-trimpath -buildvcs=false" go install -tags "$tags" -ldflags "-s -w" "$@"
}

pause() {
  (cd "$HERE/pause" && GOFLAGS="-trimpath -buildvcs=false" go build -ldflags "-s -w" \
    -o "$BIN/pause.tmp" . && mv "$BIN/pause.tmp" "$BIN/pause")
}

CTRD=github.com/containerd/containerd/v2/cmd
CNI=github.com/containernetworking/plugins/plugins
if [[ "${1:-}" != "--k8s-only" ]]; then
  timed "$BIN/pause" pause
  timed "$BIN/containerd" install_into "$BIN" "no_btrfs no_devmapper no_zfs" \
    "$CTRD/containerd@v$CONTAINERD_VERSION" "$CTRD/containerd-shim-runc-v2@v$CONTAINERD_VERSION" \
    "$CTRD/ctr@v$CONTAINERD_VERSION"
  timed "$CNI_BIN/portmap" install_into "$CNI_BIN" "" \
    "$CNI/main/bridge@v$CNI_PLUGINS_VERSION" "$CNI/ipam/host-local@v$CNI_PLUGINS_VERSION" \
    "$CNI/main/loopback@v$CNI_PLUGINS_VERSION" "$CNI/meta/portmap@v$CNI_PLUGINS_VERSION"
  timed "$BIN/coredns" install_into "$BIN" "" "github.com/coredns/coredns@v$COREDNS_VERSION"
fi
if [[ "${1:-}" != "--no-k8s" ]]; then
  for cmd in kube-scheduler kubelet kube-proxy; do timed "$BIN/$cmd" k8s "$cmd"; done
fi
echo "$BIN"
