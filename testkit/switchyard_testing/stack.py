"""The Switchyard processes on a cluster: operator and gateway, as their containers run them.

Used by the e2e tests, `switchyard demo` and the benchmarks. Each process authenticates
with a ServiceAccount token bound to the RBAC in docs/ (`bind_service_account`), so
whatever runs through here also proves those permissions are enough. The signing-key
Secret both read is created beside them the way the chart does it: once, with a random
key, and kept when it exists (`ensure_signing_secret`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from switchyard_testing.cluster import Cluster
from switchyard_testing.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_RBAC = ROOT / "docs" / "operator-rbac.yaml"
GATEWAY_RBAC = ROOT / "docs" / "gateway-rbac.yaml"
RBAC_NAMESPACE = "switchyard-system"
#: The flags' default (`--signing-secret`), in the ServiceAccount's namespace.
SIGNING_SECRET = "switchyard-signing-key"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the usual small race applies)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def switchyard_argv() -> list[str]:
    """How to run the `switchyard` command with this interpreter."""
    return [sys.executable, "-m", "switchyard_cli.main"]


def bind_service_account(cluster: Cluster, rbac_file: Path, namespace: str) -> Path:
    """Apply an RBAC file (ServiceAccount + roles) into `namespace`; return its kubeconfig.

    Cluster-scoped names get a random suffix, so several test modules can bind their own.
    """
    suffix = secrets.token_hex(3)
    docs: list[dict[str, Any]] = []
    account = ""
    for doc in yaml.safe_load_all(rbac_file.read_text()):
        if not doc:
            continue
        doc = json.loads(json.dumps(doc).replace(RBAC_NAMESPACE, namespace))
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] += f"-{suffix}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += f"-{suffix}"
        if doc["kind"] == "ServiceAccount":
            account = doc["metadata"]["name"]
        docs.append(doc)
    cluster.apply(docs)
    ensure_signing_secret(cluster, namespace)
    return cluster.service_account_kubeconfig(namespace, account)


def ensure_signing_secret(cluster: Cluster, namespace: str, name: str = SIGNING_SECRET) -> None:
    """Create the ConfigMap signing-key Secret with a random key, unless it exists."""
    found = cluster.kubectl("get", "secret", name, "-n", namespace, "--ignore-not-found",
                            "-o", "name")
    if found.stdout.strip():
        return
    key = base64.b64encode(secrets.token_bytes(48)).decode()
    cluster.apply([{"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": namespace},
                    "type": "Opaque", "data": {"current": key}}])


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # Never let an ambient KUBECONFIG (possibly production) reach the child.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update(extra or {})
    return env


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 0, b""


class Service:
    """A switchyard process with an HTTP port (gateway or operator liveness)."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, port: int,
                 env: dict[str, str] | None = None, admin_port: int | None = None) -> None:
        self.port = port
        #: The gateway's admin port (probes, /metrics, /ui); None for the operator.
        self.admin_port = admin_port
        self.process = ManagedProcess(name, list(argv), log_path, env=_clean_env(env))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The admin port's URL (the gateway's `/metrics` and `/ui` live there)."""
        if self.admin_port is None:
            raise ValueError(f"{self.process.name} has no admin port")
        return f"http://127.0.0.1:{self.admin_port}"

    def admin_get(self, path: str) -> tuple[int, bytes]:
        """GET a path on the admin port; status 0 when nothing answers."""
        return _get(self.admin_url + path)

    def start(self) -> Service:
        """Start the process (returns self, for chaining)."""
        self.process.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        self.process.stop(timeout)

    def get(self, path: str) -> tuple[int, bytes]:
        """GET a path; status 0 when nothing answers."""
        return _get(self.url + path)

    def wait_for(self, path: str, timeout: float = 60.0) -> None:
        """Wait until `path` answers 200; raise with the log tail if the process died."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.get(path)[0] == 200:
                return
            if not self.process.running():
                raise RuntimeError(self.process.describe_exit())
            time.sleep(0.2)
        raise TimeoutError(f"{self.url}{path} not ready after {timeout}s\n{self.process.tail()}")

    def log(self) -> str:
        """The whole log so far."""
        return self.process.log_path.read_text(errors="replace")


def operator(kubeconfig: Path, namespaces: Sequence[str], log_dir: Path,
             extra: Sequence[str] = ()) -> Service:
    """A `switchyard operator` process (not started)."""
    port = free_port()
    argv = [*switchyard_argv(), "operator", "--kubeconfig", str(kubeconfig),
            "--liveness-port", str(port), "--liveness-host", "127.0.0.1", "--standalone",
            *extra]
    if namespaces:
        argv += ["--namespaces", ",".join(namespaces)]
    tag = secrets.token_hex(2)
    return Service(f"operator-{tag}", argv, log_dir / f"operator-{tag}.log", port)


def gateway(kubeconfig: Path | None, log_dir: Path, *, namespaces: Sequence[str] = (),
            default_namespace: str = "default", config: Path | None = None,
            extra: Sequence[str] = (), env: dict[str, str] | None = None,
            port: int | None = None) -> Service:
    """A `switchyard gateway` process (not started): in-cluster, or standalone with `config`
    (and `kubeconfig` too for `--auth kubernetes`)."""
    port = port or free_port()
    admin_port = free_port()
    argv = [*switchyard_argv(), "gateway", "--host", "127.0.0.1", "--port", str(port),
            "--admin-port", str(admin_port),
            "--default-namespace", default_namespace, "--drain-seconds", "0", *extra]
    if config is not None:
        argv += ["--config", str(config)]
    if kubeconfig is not None:  # cluster mode, or `--auth kubernetes` in standalone mode
        argv += ["--kubeconfig", str(kubeconfig)]
    if namespaces:
        argv += ["--namespaces", ",".join(namespaces)]
    tag = secrets.token_hex(2)
    return Service(f"gateway-{tag}", argv, log_dir / f"gateway-{tag}.log", port, env,
                   admin_port=admin_port)


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of metric `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            with contextlib.suppress(ValueError):
                total += float(value)
    return total
