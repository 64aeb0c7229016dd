#!/usr/bin/env bash
# Builds the images the local node (tests/node) runs, without any registry:
#   pause.tar    the sandbox image: the pause program of build.sh          (cached)
#   coredns.tar  cluster DNS: the CoreDNS binary of build.sh                (cached)
#   base.tar     Debian bookworm with python3 and venv, by mmdebstrap from
#                the machine's Debian mirror                                (cached)
#   switchyard.tar  the project's own Dockerfile built on base.tar by buildah
#                (daemonless, chroot isolation); rebuilt on every call, buildah's layer
#                cache makes an unchanged pyproject.toml cost seconds
#   client.tar   the tests' client pod: the OpenAI SDK on base.tar (client.Containerfile)
# pause/coredns/base are OCI layouts written by ociimage.py; switchyard.tar and client.tar
# are docker-archives. All but base.tar are imported with `ctr images import` by switchyard_testing.node.
# Needs root (mmdebstrap, buildah) and `apt-get install mmdebstrap buildah`.
#
# Usage: images.sh [BIN_DIR]; prints the images folder on its last line of stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}"
BIN="${1:-$CACHE/k8s-v1.36.3/bin}"
OUT="$CACHE/node-images"
# What the base image holds; changing it changes the cache key, so a stale base is rebuilt.
BASE_PACKAGES="python3,python3-venv,python-is-python3,ca-certificates"
BASE_KEY="$(echo "bookworm minbase $BASE_PACKAGES" | sha256sum | cut -c1-12)"
export SWITCHYARD_IMAGE="switchyard.local/switchyard:dev"
mkdir -p "$OUT"

log() { echo "[images] $*" >&2; }
py() { python3 "$HERE/ociimage.py" "$@" >&2; }

if [[ "${2:-}" != "--no-binaries" && ! -f "$OUT/pause.tar" ]]; then
  py switchyard.local/pause:1 "$OUT/pause.tar" --entrypoint '["/pause"]' --file "/pause=$BIN/pause"
fi
if [[ "${2:-}" != "--no-binaries" && ! -f "$OUT/coredns.tar" ]]; then
  py switchyard.local/coredns:1 "$OUT/coredns.tar" --entrypoint '["/coredns"]' \
    --file "/coredns=$BIN/coredns"
fi
if [[ ! -f "$OUT/base-$BASE_KEY.tar" ]]; then
  start=$SECONDS
  log "building the Debian bookworm base image with mmdebstrap (about a minute)..."
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  nice -n 19 mmdebstrap --quiet --variant=minbase --include="$BASE_PACKAGES" --format=tar \
    bookworm "$tmp/rootfs.tar" >&2
  py switchyard.local/debian-python:bookworm "$OUT/base-$BASE_KEY.tar" --rootfs "$tmp/rootfs.tar" \
    --cmd '["python3"]'
  rm -rf "$tmp"
  trap - EXIT
  log "built base image in $((SECONDS - start))s"
fi

# buildah keeps its layers in the cache; its run folder is thrown away. It runs in a private
# mount namespace of its own, so the overlay mounts of its build steps can never outlive it.
run="$(mktemp -d)"
trap 'rm -rf "$run"' EXIT
B=(unshare --mount --propagation private
   buildah --root "$CACHE/buildah" --runroot "$run" --storage-driver overlay)
base_id="$("${B[@]}" pull -q "oci-archive:$OUT/base-$BASE_KEY.tar")"
"${B[@]}" tag "$base_id" switchyard.local/debian-python:bookworm
# The build's pip must trust what the machine's pip trusts (a TLS-inspecting proxy's CA);
# both are mounted into the RUN steps only, never copied into a layer.
mounts=()
for f in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
  [[ -f "$f" ]] && mounts+=(--volume "$f:$f:ro")
done
bud() {  # bud <image> <file> <context> [build args...]: build and export a docker-archive
  local image="$1" file="$2" context="$3" archive="$OUT/$4"; shift 4
  local t=$SECONDS
  nice -n 19 "${B[@]}" bud --quiet --isolation chroot --pull=never --layers "$@" \
    "${mounts[@]}" -t "$image" -f "$file" "$context" >&2
  rm -f "$archive"
  "${B[@]}" push -q "$image" "docker-archive:$archive:$image" >&2
  log "built $image in $((SECONDS - t))s"
}
log "building $SWITCHYARD_IMAGE from the Dockerfile with buildah..."
bud "$SWITCHYARD_IMAGE" "$ROOT/Dockerfile" "$ROOT" switchyard.tar \
  --build-arg PYTHON_IMAGE=switchyard.local/debian-python:bookworm --build-arg BUILD_PACKAGES=
bud switchyard.local/client:dev "$HERE/client.Containerfile" "$HERE" client.tar \
  --build-arg BASE=switchyard.local/debian-python:bookworm
echo "$OUT"
