"""One real Kubernetes node beside a local control plane, for the tests in tests/node.

    with Node.start() as node:           # control plane + node + CoreDNS, images imported
        node.kubectl("get", "pods", "-A")

`Node` is a Cluster (admin kubeconfig, kubectl, helm). It starts a `ControlPlane` whose API
server listens on the node link's host address, kube-scheduler, and inside the node's own
network and mount namespaces (see host.py) containerd with Debian's runc and the bridge CNI
plugin, the kubelet and kube-proxy; then it imports the images of hack/node/images.sh and
runs CoreDNS, so pods find Services by name. Pods reach the API server through the
`kubernetes` Service, each other and Services, and nothing else. `stop()` kills every node
process, lets the namespaces go and gives the machine back its sysctls, cgroups and paths.

Callers: tests/node/conftest.py; `python -m switchyard_testing.node up` for humans.
Must not: run without root (NodeUnavailable says why), leave anything behind, reach beyond
this machine. Binaries come from hack/node/build.sh, images from hack/node/images.sh, both
cached in ~/.cache/switchyard.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from switchyard_testing import processes
from switchyard_testing.cluster import Cluster
from switchyard_testing.controlplane import NODE_CONTROLLERS, ControlPlane, free_port
from switchyard_testing.node import config, host
from switchyard_testing.node.host import NodeError, NodeUnavailable

__all__ = ["Node", "NodeError", "NodeUnavailable", "build", "images"]

_REPO_ROOT = Path(__file__).resolve().parents[3]
NODE_BINARIES = ("kubelet", "kube-proxy", "kube-scheduler", "containerd",
                 "containerd-shim-runc-v2", "ctr", "coredns", "pause")
IMAGE_FILES = ("switchyard.tar", "client.tar", "pause.tar", "coredns.tar")
SWITCHYARD_IMAGE = "switchyard.local/switchyard:dev"


def _script(name: str, *args: str, progress: Callable[[str], None] | None) -> Path:
    """Run hack/node/NAME, pass its stderr lines to `progress`, return its last stdout line."""
    script = _REPO_ROOT / "hack" / "node" / name
    proc = subprocess.Popen(["bash", str(script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    tail: list[str] = []
    for line in proc.stderr:
        tail = [*tail[-30:], line.rstrip()]
        if progress and line.startswith("["):
            progress(line.rstrip())
    out = proc.stdout.read().strip().splitlines()
    if proc.wait() != 0 or not out:
        raise NodeUnavailable(f"hack/node/{name} failed ({proc.returncode}):\n" + "\n".join(tail))
    return Path(out[-1])


def build(progress: Callable[[str], None] | None = None) -> Path:
    """Build (or reuse) the node's binaries; returns their folder."""
    return _script("build.sh", progress=progress)


def images(bin_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Build the node's images (the project's from its Dockerfile); returns their folder."""
    return _script("images.sh", str(bin_dir), progress=progress)


def _kill_pods() -> None:
    for _ in range(50):
        pids = host.cgroup_members()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


class Node(Cluster):
    """A running control plane with one Ready node; stop() undoes everything."""

    def __init__(self, bin_dir: Path, image_dir: Path, root: Path, keep: bool = False) -> None:
        super().__init__(root / "admin.kubeconfig", bin_dir, root)
        self.root = root
        self.keep = keep
        self.image_dir = image_dir
        self.plane: ControlPlane | None = None
        self.state = host.HostState.record()
        for sub in ("logs", "containerd", "cni/net.d", "cni/ipam", "kubelet/root", "kubelet/pki"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        binds = []
        for i, fixed in enumerate(host.FIXED_PATHS):
            src = root / "fixed" / str(i)
            src.mkdir(parents=True)
            binds.append((src, Path(fixed)))
        self.namespaces = host.Namespaces(root, binds)
        self._procs: dict[str, processes.ManagedProcess] = {}
        self.timings: dict[str, float] = {}

    @classmethod
    def start(
        cls,
        bin_dir: Path,
        image_dir: Path,
        crds: Path | None = None,
        progress: Callable[[str], None] | None = None,
        keep: bool = False,
        timeout: float = 120.0,
    ) -> Node:
        """Start the control plane, the node and CoreDNS; import the images. Raises
        NodeUnavailable (cannot run here) or NodeError; nothing is left after an error."""
        host.preflight()
        missing = [b for b in NODE_BINARIES if not (bin_dir / b).is_file()]
        missing += [i for i in IMAGE_FILES if not (image_dir / i).is_file()]
        if missing:
            raise NodeUnavailable(
                f"not built: {', '.join(missing)} (hack/node/build.sh, images.sh)"
            )
        node = cls(bin_dir, image_dir, Path(tempfile.mkdtemp(prefix="switchyard-node-")), keep)
        try:
            node._start_all(crds, progress or (lambda _: None), timeout)
        except BaseException:
            node.stop()
            raise
        return node

    @property
    def ctr(self) -> list[str]:
        return [str(self.bin_dir / "ctr"), "-a", str(self.root / "containerd/containerd.sock"),
                "-n", "k8s.io"]

    def _lap(self, name: str, since: float) -> None:
        self.timings[name] = round(time.monotonic() - since, 2)

    def _start_all(self, crds: Path | None, say: Callable[[str], None], timeout: float) -> None:
        t0 = time.monotonic()
        self.state.make_mount_points()
        self.namespaces.start()  # first: the API server listens on the link's host address
        self.plane = ControlPlane.start(
            self.bin_dir, crds=crds, address=config.HOST_IP, controllers=NODE_CONTROLLERS,
            keep=self.keep, timeout=timeout,
        )
        self.namespaces.guard(self.plane.apiserver_port)
        self._lap("control plane", t0)
        shutil.copyfile(self.plane.kubeconfig, self.kubeconfig)
        kc = self.kubeconfig
        bin_dir, root = self.bin_dir, self.root
        runc = shutil.which("runc") or "runc"
        (root / "containerd/config.toml").write_text(
            config.containerd(root, Path(runc), bin_dir.parent / "cni"))
        (root / "cni/net.d/10-switchyard.conflist").write_text(config.cni(root))
        (root / "kubelet/config.yaml").write_text(config.kubelet(root, self.plane.pki.ca_cert))
        (root / "kube-proxy.yaml").write_text(config.kube_proxy(kc))
        path_env = {"PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin"}
        enter = self.namespaces.enter
        self._add("containerd", enter([str(bin_dir / "containerd"), "--config",
                                       str(root / "containerd/config.toml")]), path_env)
        sock = root / "containerd/containerd.sock"
        self._wait("containerd", sock.exists, 30)
        # Inside the mount namespace: unpacking mounts the snapshots for a moment. Two at a
        # time: the big two (project and client image) take most of the node's start.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda image: self.namespaces.run(
                [*self.ctr, "images", "import", str(self.image_dir / image)]), IMAGE_FILES))
        self._lap("containerd + images", t0)
        self._add("kube-scheduler", [
            str(bin_dir / "kube-scheduler"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false",
        ])
        self._add("kubelet", enter([
            str(bin_dir / "kubelet"), f"--config={root / 'kubelet/config.yaml'}",
            f"--kubeconfig={kc}", f"--root-dir={root / 'kubelet/root'}",
            f"--cert-dir={root / 'kubelet/pki'}", f"--node-ip={config.NODE_IP}",
            f"--hostname-override={config.NODE_NAME}", "--v=1",
        ]), path_env)
        self._add("kube-proxy", enter([
            str(bin_dir / "kube-proxy"), f"--config={root / 'kube-proxy.yaml'}", "--v=1",
        ]), path_env)
        self._wait("kubelet", self._node_ready, timeout)
        self._lap("node Ready", t0)
        self.apply(config.coredns_manifests())
        self.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns",
                     f"--timeout={int(timeout)}s", timeout=timeout + 5)
        self._lap("CoreDNS Ready", t0)
        say(f"node Ready in {time.monotonic() - t0:.1f}s ({self.timings}); kubeconfig {kc}")

    def _add(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        proc = processes.ManagedProcess(name, argv, self.root / "logs" / f"{name}.log", env=env)
        self._procs[name] = proc
        proc.start()

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            proc = self._procs[name]
            if not proc.running():
                raise NodeError(f"{name} did not start: {proc.describe_exit()}")
            if time.monotonic() > deadline:
                raise NodeError(f"{name} not ready after {timeout:.0f}s: {proc.describe_exit()}")
            time.sleep(0.2)

    def _node_ready(self) -> bool:
        done = self.kubectl("get", "node", config.NODE_NAME, "-o",
                            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                            check=False)
        return done.stdout.strip() == "True"

    @property
    def logs(self) -> dict[str, Path]:
        found = {name: p.log_path for name, p in self._procs.items()}
        if self.plane:
            found.update(self.plane.logs)
        return found

    def stop(self) -> list[str]:
        """Stop everything and restore the machine; returns what could not be cleaned.

        Every step runs even when one before it failed: a half-stopped node must still give
        the machine back its sysctls, cgroups and paths.
        """
        problems: list[str] = []

        def step(what: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as exc:
                problems.append(f"{what}: {exc!r}")

        for name in ("kube-proxy", "kubelet", "kube-scheduler"):
            if name in self._procs:
                step(f"stop {name}", functools.partial(self._procs[name].stop, timeout=10))
        # The pods' processes (their cgroups say which), then containerd and its shims.
        step("kill the pods' processes", _kill_pods)
        if "containerd" in self._procs:
            step("stop containerd", functools.partial(self._procs["containerd"].stop, timeout=10))
        step("leave the namespaces", self.namespaces.stop)
        if self.plane:
            step("stop the control plane", self.plane.stop)
        step("restore the machine", lambda: problems.extend(self.state.restore()))
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        return problems

    def __enter__(self) -> Node:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
