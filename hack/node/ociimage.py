#!/usr/bin/env python3
"""Write a single-layer OCI image-layout tarball that `ctr images import` and buildah accept.

Called by hack/node/images.sh for the images that have no Dockerfile: the sandbox (pause)
image, CoreDNS, and the Debian base image that the project's Dockerfile builds on. The layer
is either an existing root filesystem tarball (--rootfs, from mmdebstrap) or a handful of
files (--file DEST=SRC); it is stored uncompressed, so its digest is also its diff_id, and
with fixed mtimes the output is reproducible. It must not pull or push anything.

usage: ociimage.py NAME OUT.tar [--rootfs TAR | --file DEST=SRC ...] [--entrypoint JSON]
                   [--cmd JSON] [--user UID:GID]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path

EPOCH = "1970-01-01T00:00:00Z"


def _info(name: str, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _files_layer(out: Path, files: list[str]) -> None:
    """A layer of static files (mode 0755) and the directories above them."""
    dirs: set[str] = {"/tmp", "/etc"}
    for spec in files:
        parent = spec.split("=", 1)[0].rsplit("/", 1)[0]
        while parent:
            dirs.add(parent)
            parent = parent.rsplit("/", 1)[0]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            mode = 0o1777 if d == "/tmp" else 0o755
            tar.addfile(_info(d, type=tarfile.DIRTYPE, mode=mode))
        for spec in files:
            dest, src = spec.split("=", 1)
            data = Path(src).read_bytes()
            tar.addfile(_info(dest, size=len(data), mode=0o755), io.BytesIO(data))


def _digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest(), path.stat().st_size


def write(name: str, out: Path, layer: Path, config: dict[str, object]) -> None:
    layer_digest, layer_size = _digest(layer)
    image_config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": EPOCH, "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": EPOCH, "created_by": "hack/node/ociimage.py"}],
    }, sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(image_config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(image_config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer_size}],
    }, sort_keys=True).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        }],
    }, sort_keys=True).encode()
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        def add(path: str, data: bytes) -> None:
            tar.addfile(_info(path, size=len(data), mode=0o644), io.BytesIO(data))
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(_info(d, type=tarfile.DIRTYPE, mode=0o755))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        add("blobs/sha256/" + config_digest[7:], image_config)
        add("blobs/sha256/" + manifest_digest[7:], manifest)
        with layer.open("rb") as f:
            tar.addfile(_info("blobs/sha256/" + layer_digest[7:], size=layer_size, mode=0o644), f)
    tmp.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", help="image name, e.g. switchyard.local/pause:1")
    parser.add_argument("out", type=Path)
    parser.add_argument("--rootfs", type=Path, help="root filesystem tarball as the layer")
    parser.add_argument("--file", action="append", default=[], help="DEST=SRC")
    parser.add_argument("--entrypoint", default="null")
    parser.add_argument("--cmd", default="null")
    parser.add_argument("--user", default="")
    args = parser.parse_args()
    config: dict[str, object] = {
        "Entrypoint": json.loads(args.entrypoint), "Cmd": json.loads(args.cmd),
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "WorkingDir": "/",
    }
    if args.user:
        config["User"] = args.user
    with tempfile.TemporaryDirectory() as tmp:
        layer = args.rootfs or Path(tmp) / "layer.tar"
        if not args.rootfs:
            _files_layer(layer, args.file)
        write(args.name, args.out, layer, config)


if __name__ == "__main__":
    main()
