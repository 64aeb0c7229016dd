"""A real, local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager.

Used by the e2e tests (tests/e2e/conftest.py), `switchyard demo` and bench/. The binaries
come from `binaries.locate()` (built from pinned Go modules); everything runs on free
127.0.0.1 ports with a fresh temporary folder holding data, keys, kubeconfigs and one log
per process. RBAC is on, the default admission plugins run, the API server keeps an audit
log of Secret, ConfigMap, Event and GatewayEndpoint requests (`audit_events`), ServiceAccount
tokens are signed, and the controller manager runs the garbage collector and namespace
controllers, so owned objects and deleted namespaces really go away. There is no kubelet:
pods never run, unless `node.py` starts one beside it (then the API server listens on the
node network's host address, and the controller manager also runs NODE_CONTROLLERS).

    with ControlPlane.start() as cp:
        cp.kubectl("get", "namespaces")

For humans: `python -m switchyard_testing.controlplane up` starts one and waits for Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from switchyard_testing import binaries, certs, kubeconfig, processes
from switchyard_testing.cluster import Cluster

ADMIN_USER = "switchyard-admin"
_KCM_USER = "system:kube-controller-manager"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Just enough controllers for the behaviour the tests rely on: owned objects deleted with
# their owner, deleted namespaces emptied and removed, the `default` ServiceAccount and the
# kube-root-ca.crt ConfigMap that every namespace of a real cluster has, and the built-in
# `admin`/`edit`/`view` roles filled from their aggregated parts (without it `edit` grants
# nothing, and the tenant tests would not play a real tenant).
CONTROLLERS = (
    "clusterrole-aggregation-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
)
# What a node needs on top (switchyard_testing.node): the node's not-ready taint lifted,
# Services' EndpointSlices, Deployments and their ReplicaSets, PodDisruptionBudgets.
NODE_CONTROLLERS = (
    *CONTROLLERS,
    "node-lifecycle-controller",
    "endpointslice-controller",
    "deployment-controller",
    "replicaset-controller",
    "disruption-controller",
)
LOOPBACK = "127.0.0.1"


# What the API server itself logs about requests (its audit log): who asked which URI for
# Secrets, ConfigMaps, Events and GatewayEndpoints (and their status), at Metadata level
# (never a body, so no Secret value reaches the file). Tests read it to assert on what
# crossed the wire: the selector and `limit` a LIST really carried, a GET that never
# happened, how many writes an endpoint cost.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources:
      - group: ""
        resources: [secrets, configmaps, events]
      - group: switchyard.dev
        resources: [gatewayendpoints, gatewayendpoints/status]
  - level: None
"""


class ControlPlaneError(RuntimeError):
    """A component failed to start or stopped answering; the message has its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControlPlane(Cluster):
    """A running local control plane; a Cluster with the admin's kubeconfig.

    Build it with `ControlPlane.start()`; `stop()` (or leaving the `with` block) ends every
    process and removes the folder unless `keep` was set.
    """

    def __init__(
        self,
        bin_dir: Path,
        root: Path,
        keep: bool = False,
        address: str = LOOPBACK,
        controllers: tuple[str, ...] = CONTROLLERS,
    ) -> None:
        super().__init__(root / "admin.kubeconfig", bin_dir, root)
        self.root = root
        self.keep = keep
        self.address = address
        self.controllers = controllers
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.apiserver_port = free_port()
        self.kcm_port = free_port()
        self.pki = certs.generate(root / "pki", extra_ips=(address,))
        self.admin_token = os.urandom(24).hex()
        self._kcm_token = os.urandom(24).hex()
        (root / "logs").mkdir()
        self.etcd = processes.ManagedProcess("etcd", self._etcd_argv(), root / "logs/etcd.log")
        self.apiserver = processes.ManagedProcess(
            "kube-apiserver", self._apiserver_argv(), root / "logs/kube-apiserver.log"
        )
        self.controller_manager = processes.ManagedProcess(
            "kube-controller-manager", self._kcm_argv(), root / "logs/kube-controller-manager.log"
        )

    @classmethod
    def start(
        cls,
        bin_dir: Path | str | None = None,
        progress: Callable[[str], None] | None = None,
        keep: bool = False,
        timeout: float = 90.0,
        crds: Path | None = None,
        address: str = LOOPBACK,
        controllers: tuple[str, ...] = CONTROLLERS,
    ) -> ControlPlane:
        """Locate (or build) the binaries, start the three components and wait until ready.

        `crds` (a file or folder) are installed before the controller manager starts, so
        its garbage collector watches their resources from the first second instead of
        discovering them at its next 30-second resync. `progress` receives build and
        startup messages. Raises binaries.BinariesUnavailable (no Go, failed build),
        ControlPlaneError (a component did not become ready in `timeout` seconds) or
        KubectlError (the API server rejected a CRD); nothing is left running after an
        error. `address` is where the API server listens (a local address other than
        loopback when pods must reach it, see node.py); `controllers` what the controller
        manager runs.
        """
        located = binaries.locate(bin_dir, progress)
        root = Path(tempfile.mkdtemp(prefix="switchyard-controlplane-"))
        plane = cls(located, root, keep=keep, address=address, controllers=controllers)
        try:
            plane._start_all(timeout, progress or (lambda _: None), crds)
        except BaseException:
            plane.stop()
            raise
        return plane

    @property
    def logs(self) -> dict[str, Path]:
        """Log file of each component, by process name."""
        return {p.name: p.log_path for p in self._processes()}

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.apiserver_port}"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (JSON lines, `AUDIT_POLICY`)."""
        return self.root / "logs" / "audit.log"

    def audit_events(self, username: str | None = None) -> list[dict[str, Any]]:
        """Every audit event logged so far (optionally only those of one user), in order.

        Written synchronously (the log backend's default blocking mode), so a request that
        has been answered is already in the file.
        """
        if not self.audit_log.exists():
            return []
        events = []
        for line in self.audit_log.read_text("utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            if username is None or event.get("user", {}).get("username") == username:
                events.append(event)
        return events

    def cluster_info(self) -> kubeconfig.ClusterInfo:
        return kubeconfig.ClusterInfo.from_ca_file(self.server, self.pki.ca_cert)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every component (SIGTERM, then SIGKILL) and remove the folder."""
        for proc in reversed(self._processes()):
            proc.stop(timeout)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart_apiserver(self, down_seconds: float = 0.0, timeout: float = 60.0) -> None:
        """Stop kube-apiserver, wait `down_seconds`, start it again on the same port with the
        same etcd (so every object survives) and wait until it is ready."""
        self.stop_apiserver()
        time.sleep(down_seconds)
        self.start_apiserver(timeout)

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver alone; etcd and the controller manager keep running."""
        # It stops listening at once on SIGTERM, then lingers on the controller manager's
        # open watches for as long as we let it; the data is safe in etcd by then.
        self.apiserver.stop(timeout=3)

    def start_apiserver(self, timeout: float = 60.0) -> None:
        """Start a stopped kube-apiserver on its old port and wait until /readyz is ok."""
        self.apiserver.start()
        self._wait_apiserver(timeout)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _processes(self) -> list[processes.ManagedProcess]:
        return [self.etcd, self.apiserver, self.controller_manager]

    def _start_all(
        self, timeout: float, progress: Callable[[str], None], crds: Path | None
    ) -> None:
        started = time.monotonic()
        self._write_auth_files()
        (self.root / "audit-policy.yaml").write_text(AUDIT_POLICY)
        self.etcd.start()
        self._wait(self.etcd, self._etcd_healthy, timeout)
        self.apiserver.start()
        self._wait_apiserver(timeout)
        if crds is not None:
            self.apply_crds(crds)
        self.controller_manager.start()
        self._wait(self.controller_manager, self._kcm_healthy, timeout)
        # The `default` ServiceAccount appears once the controllers have synced their
        # caches; waiting for it proves the controller manager really works.
        self._wait(self.controller_manager, self._default_service_account_exists, timeout)
        progress(
            f"control plane ready at {self.server} in {time.monotonic() - started:.1f}s "
            f"(kubeconfig {self.kubeconfig})"
        )

    def _write_auth_files(self) -> None:
        # Static tokens: the admin (system:masters bypasses RBAC, as kind's admin does) and
        # the controller manager, which runs every controller with its own identity.
        tokens = self.root / "tokens.csv"
        tokens.touch(mode=0o600)
        tokens.write_text(
            f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'
            f'{self._kcm_token},{_KCM_USER},{_KCM_USER},"system:masters"\n'
        )
        info = self.cluster_info()
        kubeconfig.write_token_kubeconfig(self.kubeconfig, info, self.admin_token, ADMIN_USER)
        kubeconfig.write_token_kubeconfig(
            self.root / "kcm.kubeconfig", info, self._kcm_token, _KCM_USER
        )

    def _etcd_argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        return [
            str(self.bin_dir / "etcd"),
            "--name=switchyard-e2e",
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=switchyard-e2e={peer}",
            "--log-level=warn",
            # Throwaway data: skipping fsync makes every write much faster on CI disks.
            "--unsafe-no-fsync",
        ]

    def _apiserver_argv(self) -> list[str]:
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            f"--bind-address={self.address}",
            f"--advertise-address={self.address}",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={self.root / 'pki'}",
            f"--tls-cert-file={self.pki.server_cert}",
            f"--tls-private-key-file={self.pki.server_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            f"--token-auth-file={self.root / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={self.pki.sa_public_key}",
            f"--service-account-signing-key-file={self.pki.sa_private_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            # The `kubernetes` Service cannot get a loopback endpoint (validation forbids
            # 127.0.0.0/8); with a node, pods reach the API server through it.
            f"--endpoint-reconciler-type={'none' if self.address == LOOPBACK else 'lease'}",
            # The kubelet's address, not its name: a name would be resolved through the
            # machine's DNS resolver (logs/exec/port-forward go to the kubelet).
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            f"--audit-policy-file={self.root / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
        ]

    def _kcm_argv(self) -> list[str]:
        config = self.root / "kcm.kubeconfig"
        return [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            # No front proxy here: looking up its CA in kube-system only logs errors.
            "--authentication-skip-lookup",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.kcm_port}",
            f"--cert-dir={self.root / 'kcm-certs'}",
            f"--controllers={','.join(self.controllers)}",
            "--leader-elect=false",
            f"--service-account-private-key-file={self.pki.sa_private_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            "--use-service-account-credentials=false",
            "--profiling=false",
        ]

    def _wait_apiserver(self, timeout: float) -> None:
        self._wait(self.apiserver, self._apiserver_ready, timeout)

    def _wait(
        self, proc: processes.ManagedProcess, ready: Callable[[], bool], timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not proc.running():
                raise ControlPlaneError(f"{proc.name} did not start: {proc.describe_exit()}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{proc.name} not ready after {timeout:.0f}s ({ready.__name__}): "
                    f"{proc.describe_exit()}"
                )
            time.sleep(0.1)

    def _etcd_healthy(self) -> bool:
        body = _get(f"http://127.0.0.1:{self.etcd_port}/health")
        return body is not None and json.loads(body).get("health") == "true"

    def _apiserver_ready(self) -> bool:
        return _get(f"{self.server}/readyz", self._tls(), self.admin_token) == "ok"

    def _kcm_healthy(self) -> bool:
        # The controller manager serves with a self-signed certificate: only liveness is
        # asked of it here, its real readiness is the ServiceAccount check that follows.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        return _get(f"https://127.0.0.1:{self.kcm_port}/healthz", insecure) == "ok"

    def _default_service_account_exists(self) -> bool:
        url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        return _get(url, self._tls(), self.admin_token) is not None

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki.ca_cert))


def _get(url: str, context: ssl.SSLContext | None = None, token: str | None = None) -> str | None:
    """Body of a 200 answer, or None for any other answer or no answer at all."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return str(response.read().decode())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    """`python -m switchyard_testing.controlplane up`: start, print, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m switchyard_testing.controlplane")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a local control plane and wait for Ctrl-C")
    up.add_argument("--bin-dir", help="folder with etcd, kube-apiserver... (default: build)")
    up.add_argument("--crds", help="also apply this CRD file or folder")
    up.add_argument("--keep", action="store_true", help="keep the folder (logs, data) on exit")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        plane = ControlPlane.start(args.bin_dir, progress=say, keep=args.keep)
    except (binaries.BinariesUnavailable, ControlPlaneError) as exc:
        say(f"error: {exc}")
        return 1
    with plane:
        if args.crds:
            plane.apply_crds(Path(args.crds))
        processes.hold_until_signalled(say, plane.kubeconfig, plane.root / "logs", "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
