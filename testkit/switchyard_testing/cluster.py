"""An admin's handle on a Kubernetes cluster, through the real kubectl.

`Cluster` works on any cluster reachable with an admin kubeconfig: the local control plane
(`controlplane.ControlPlane` extends it) or kind and friends through
SWITCHYARD_E2E_KUBECONFIG. Tests, `switchyard demo` and benches use it to apply manifests,
install the CRD and mint ServiceAccount kubeconfigs, so the operator and the gateway run
with exactly the RBAC the chart grants them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from switchyard_testing import kubeconfig

_KUBECTL_TIMEOUT = 120.0


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; str() includes its stderr (CalledProcessError's omits it)."""

    def __str__(self) -> str:
        args = " ".join(str(a) for a in self.cmd[1:] if not str(a).startswith("--kubeconfig"))
        return f"kubectl {args} failed with status {self.returncode}: {self.stderr or ''}".strip()


class Cluster:
    """Admin access to one cluster: `kubeconfig` (admin), `bin_dir` (kubectl, helm...)."""

    def __init__(self, kubeconfig: Path, bin_dir: Path, work_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.bin_dir = bin_dir
        self.work_dir = work_dir  # minted kubeconfigs and kubectl's discovery cache go here

    @property
    def kubectl_path(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def server(self) -> str:
        """The API server URL of the admin kubeconfig's current context."""
        return self.cluster_info().server

    def cluster_info(self) -> kubeconfig.ClusterInfo:
        """Server URL and CA of the admin kubeconfig's current context."""
        view = json.loads(
            self.kubectl("config", "view", "--minify", "--raw", "--flatten", "-o", "json").stdout
        )
        return kubeconfig.ClusterInfo.from_kubeconfig_cluster(view["clusters"][0]["cluster"])

    def env(self, kubeconfig_path: Path | None = None) -> dict[str, str]:
        """This process's environment with KUBECONFIG pointing at `kubeconfig_path`
        (default: the admin's), for child processes such as the operator or a gateway."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(kubeconfig_path or self.kubeconfig)
        return env

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = _KUBECTL_TIMEOUT,
        kubeconfig_path: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with the admin kubeconfig (or `kubeconfig_path`).

        Raises KubectlError on a non-zero exit when `check` is true, and
        subprocess.TimeoutExpired after `timeout` seconds.
        """
        config = kubeconfig_path or self.kubeconfig
        argv = [
            str(self.kubectl_path),
            f"--kubeconfig={config}",
            f"--cache-dir={self.work_dir / 'kubectl-cache'}",
            *args,
        ]
        # KUBECONFIG in the environment too, in case a plugin or subcommand reads it: never
        # the caller's ambient one, which may point at a production cluster.
        env = {**os.environ, "KUBECONFIG": str(config)}
        done = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, env=env
        )
        if check and done.returncode != 0:
            raise KubectlError(done.returncode, argv, done.stdout, done.stderr)
        return done

    def apply(
        self,
        manifests: str | Sequence[Mapping[str, Any]],
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl apply -f -` of YAML text or of objects; raises KubectlError."""
        text = manifests if isinstance(manifests, str) else yaml.safe_dump_all(list(manifests))
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=text)

    def apply_crds(self, path: Path, timeout: float = 60.0) -> list[str]:
        """Apply the CRD file or folder at `path` and wait until each is Established.

        Returns the CRD names (`gatewayendpoints.switchyard.dev`). Raises KubectlError,
        for instance when the API server rejects a CEL rule or its cost estimate.
        """
        # Server-side apply: the CRD's descriptions make it too big for the
        # last-applied-configuration annotation that client-side apply writes.
        done = self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=switchyard-e2e",
            "-f",
            str(path),
            "-o",
            "name",
        )
        names = [line.split("/", 1)[1] for line in done.stdout.split() if "/" in line]
        if names:
            self.kubectl(
                "wait",
                "--for=condition=Established",
                f"--timeout={int(timeout)}s",
                *(f"crd/{n}" for n in names),
                timeout=timeout + 10,
            )
        return names

    def create_namespace(self, prefix: str = "e2e") -> str:
        """Create a namespace with a unique name starting with `prefix`; return its name."""
        stem = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")[:50].rstrip("-") or "e2e"
        name = f"{stem}-{secrets.token_hex(4)}"
        self.kubectl("create", "namespace", name)
        return name

    def delete_namespace(self, name: str, wait: bool = False) -> None:
        """Delete a namespace; with `wait`, until it is gone (the namespace controller's
        finalizer removes its content first)."""
        self.kubectl(
            "delete", "namespace", name, "--ignore-not-found", f"--wait={str(wait).lower()}"
        )

    def service_account_kubeconfig(self, namespace: str, name: str, duration: str = "24h") -> Path:
        """Create ServiceAccount `namespace/name` (if missing) and write a kubeconfig that
        authenticates as it with a TokenRequest token; return the kubeconfig's path.

        The account has only the RBAC bound to it, so a process run with this file proves
        its permissions. Raises KubectlError.
        """
        self.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": namespace},
                }
            ]
        )
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration}"
        ).stdout.strip()
        path = self.work_dir / f"sa-{namespace}-{name}.kubeconfig"
        return kubeconfig.write_token_kubeconfig(
            path,
            self.cluster_info(),
            token,
            user=f"system:serviceaccount:{namespace}:{name}",
            namespace=namespace,
        )
