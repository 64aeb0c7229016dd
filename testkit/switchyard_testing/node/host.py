"""The local node's footprint on the machine: its namespaces, its link to the host, its
egress guard, and the machine-wide state it must give back.

Called by `switchyard_testing.node.Node` only. A holder process (`unshare`) owns one network
namespace and one private mount namespace; every node process is started inside both
(`Namespaces.enter`). The pod bridge, the node's iptables rules, its net.* sysctls and every
mount the node makes live there, so they vanish when the last process in them exits. What
cannot be kept inside is recorded before the node starts and restored after it stops
(`HostState`): the machine-wide sysctls the kubelet sets, the `kubepods` cgroups, and the
fixed paths the kubelet and containerd use whatever their configuration says (bind-mounted
from the node's folder inside the mount namespace; only their empty mount points appear).

Must not: kill a process it did not start (only the members of the node's cgroups and
namespaces), touch a sysctl it did not see changed, or let pod traffic leave the machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from switchyard_testing import processes
from switchyard_testing.node import config

HOST_VETH = "sy-node0"
NODE_VETH = "eth0"
# The kubelet sets the first four on start (and does not restore them); kernel.panic_on_oops=1
# on a shared machine is a real risk. The bridge plugin sets ip_forward, here only inside
# the node's namespace; it is watched on the host all the same.
HOST_SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
)
# Paths the kubelet, containerd and libcni use whatever their configuration says.
FIXED_PATHS = (
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
    "/run/containerd",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
EGRESS_CHAIN = "SWITCHYARD-EGRESS"


class NodeUnavailable(RuntimeError):
    """This machine cannot run the node (not root, a tool missing, an address taken)."""


class NodeError(RuntimeError):
    """A node component failed; the message says which, with its log tail when it has one."""


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def kubepods_cgroups() -> list[Path]:
    """The kubelet's `kubepods` cgroup in every hierarchy where it exists."""
    found = [p / "kubepods" for p in sorted(CGROUP_ROOT.iterdir()) if (p / "kubepods").is_dir()]
    if (CGROUP_ROOT / "kubepods").is_dir():  # a cgroup2-only machine
        found.append(CGROUP_ROOT / "kubepods")
    return found


def preflight() -> None:
    """Raise NodeUnavailable unless a node can start here now."""
    if os.geteuid() != 0:
        raise NodeUnavailable("the node needs root (network and mount namespaces, cgroups)")
    for tool in ("unshare", "nsenter", "ip", "iptables", "runc", "mount"):
        if shutil.which(tool) is None:
            raise NodeUnavailable(f"{tool} not found (apt-get install iptables runc)")
    if kubepods_cgroups():
        raise NodeUnavailable(
            "a kubepods cgroup exists: another node runs on this machine (or a run killed "
            "with SIGKILL left its pods: see /sys/fs/cgroup/*/kubepods)"
        )
    addresses = run(["ip", "-o", "addr", "show"]).stdout
    routes = run(["ip", "route", "show"]).stdout
    for taken in (f"inet {config.HOST_IP}/", f" {HOST_VETH}", config.POD_CIDR):
        if taken in addresses or taken in routes:
            raise NodeUnavailable(f"{taken} is already in use on this machine")


@dataclasses.dataclass
class HostState:
    """What the node may change outside its namespaces, as it was before the node."""

    sysctls: dict[str, str]
    created_paths: list[Path]

    @classmethod
    def record(cls) -> HostState:
        sysctls = {}
        for name in HOST_SYSCTLS:
            with contextlib.suppress(OSError):
                sysctls[name] = _sysctl_path(name).read_text().strip()
        created = []
        for fixed in map(Path, FIXED_PATHS):
            if not fixed.exists():
                created.append(fixed)
        return cls(sysctls, created)

    def make_mount_points(self) -> None:
        for path in self.created_paths:
            path.mkdir(parents=True)

    def restore(self) -> list[str]:
        """Put back every recorded sysctl that changed, remove the cgroups and the mount
        points the node left; returns what it could not clean, for the caller to report."""
        problems = []
        for name, value in self.sysctls.items():
            path = _sysctl_path(name)
            with contextlib.suppress(OSError):
                if path.read_text().strip() != value:
                    path.write_text(value)
        try:
            for cgroup in kubepods_cgroups():
                problems += _remove_cgroup_tree(cgroup)
        except OSError as exc:
            problems.append(f"kubepods cgroups: {exc}")
        for path in reversed(self.created_paths):
            try:
                path.rmdir()
            except OSError as exc:
                problems.append(f"{path}: {exc}")
        return problems


def _remove_cgroup_tree(top: Path) -> list[str]:
    # Deepest first; a cgroup whose last task just died may be busy for a moment. os.walk,
    # unlike Path.rglob, shrugs off folders that vanish while it walks.
    for _ in range(50):
        for folder, _dirs, _files in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        if not top.exists():
            return []
        time.sleep(0.1)
    return [f"{top} could not be removed"]


def cgroup_members() -> set[int]:
    """PIDs of every process in a kubepods cgroup: the pods' containers."""
    pids: set[int] = set()
    for top in kubepods_cgroups():
        for folder, _dirs, files in os.walk(top):  # containers come and go meanwhile
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(x) for x in Path(folder, "cgroup.procs").read_text().split())
    return pids


class Namespaces:
    """The holder of the node's network and mount namespaces, and the veth pair to it."""

    def __init__(self, root: Path, binds: Sequence[tuple[Path, Path]]) -> None:
        self.root = root
        ready = root / "namespaces.ready"
        # Inside the new mount namespace (propagation private: nothing mounted here is seen
        # outside), bind the node's own folders over the fixed paths, then wait forever.
        script = "".join(f"mount --bind '{src}' '{dst}' && " for src, dst in binds)
        script += f"touch '{ready}' && exec sleep infinity"
        self.holder = processes.ManagedProcess(
            "namespaces",
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", script],
            root / "logs" / "namespaces.log",
        )
        self._ready = ready

    @property
    def pid(self) -> int:
        pid = self.holder.pid
        if pid is None:
            raise NodeError("the namespace holder is not running")
        return pid

    def enter(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the node's network and mount namespaces."""
        return ["nsenter", f"--target={self.pid}", "--net", "--mount", "--", *argv]

    def run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(self.enter(argv), check)

    def start(self) -> None:
        self.holder.start()
        deadline = time.monotonic() + 10
        while not self._ready.exists():
            if not self.holder.running() or time.monotonic() > deadline:
                raise NodeError(f"namespaces: {self.holder.describe_exit()}")
            time.sleep(0.05)
        link = f"/{config.LINK_PREFIX}"
        run(["ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", NODE_VETH,
             "netns", str(self.pid)])
        run(["ip", "addr", "add", config.HOST_IP + link, "dev", HOST_VETH])
        run(["ip", "link", "set", HOST_VETH, "up"])
        # Replies from the API server to pods go back through the node (no masquerading).
        run(["ip", "route", "add", config.POD_CIDR, "via", config.NODE_IP, "dev", HOST_VETH])
        self.run(["ip", "link", "set", "lo", "up"])
        self.run(["ip", "addr", "add", config.NODE_IP + link, "dev", NODE_VETH])
        self.run(["ip", "link", "set", NODE_VETH, "up"])
        for name, value in (
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.bridge.bridge-nf-call-iptables", "1"),
        ):
            self.run(["sysctl", "-qw", f"{name}={value}"], check=False)

    def guard(self, api_port: int) -> None:
        """Install the egress guard; before any pod starts."""
        # Forwarded traffic from the pod network may go to pods, to Services (already
        # translated to a pod, or to the API server, by kube-proxy) and to the API server's
        # port; everything else is dropped. There is no default route in the namespace
        # either. New connections from pods to the node itself (the kubelet) are dropped.
        ipt = ["iptables", "-w"]
        self.run([*ipt, "-N", EGRESS_CHAIN])
        for dest in (config.POD_CIDR, config.SERVICE_CIDR):
            self.run([*ipt, "-A", EGRESS_CHAIN, "-d", dest, "-j", "RETURN"])
        self.run([*ipt, "-A", EGRESS_CHAIN, "-d", f"{config.HOST_IP}/32", "-p", "tcp",
                  "--dport", str(api_port), "-j", "RETURN"])
        self.run([*ipt, "-A", EGRESS_CHAIN, "-j", "DROP"])
        self.run([*ipt, "-I", "FORWARD", "1", "-s", config.POD_CIDR, "-j", EGRESS_CHAIN])
        self.run([*ipt, "-I", "INPUT", "1", "-s", config.POD_CIDR, "-d", config.NODE_IP,
                  "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"])

    def members(self) -> set[int]:
        """PIDs in the node's network namespace other than the holder (containerd's shims)."""
        try:
            mine = os.readlink(f"/proc/{self.pid}/ns/net")
        except (OSError, NodeError):
            return set()
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != self.pid:
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns" / "net") == mine:
                        found.add(int(entry.name))
        return found

    def stop(self) -> None:
        """Kill what is left inside, then the holder: the namespaces, the veth pair and the
        host route go with it."""
        for pid in self.members():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.holder.stop(timeout=5)
        deadline = time.monotonic() + 10
        while run(["ip", "link", "show", HOST_VETH], check=False).returncode == 0:
            if time.monotonic() > deadline:
                run(["ip", "link", "del", HOST_VETH], check=False)
                break
            time.sleep(0.1)
