"""Writing kubeconfig files for the test kit.

Every kubeconfig here authenticates with a bearer token (the admin's static token, or a
ServiceAccount token from the TokenRequest API) and embeds the CA, so the file alone is
enough for kubectl, kopf or the gateway, whichever folder they run from.
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import yaml


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """How to reach an API server: its URL and the CA that signs its certificate."""

    server: str
    ca_data: str | None = None  # base64 PEM, as kubeconfig's certificate-authority-data
    insecure: bool = False

    @classmethod
    def from_kubeconfig_cluster(cls, entry: dict[str, Any]) -> ClusterInfo:
        """Build from the `cluster:` mapping of a flattened kubeconfig."""
        return cls(
            server=str(entry["server"]),
            ca_data=entry.get("certificate-authority-data"),
            insecure=bool(entry.get("insecure-skip-tls-verify", False)),
        )

    @classmethod
    def from_ca_file(cls, server: str, ca_file: Path) -> ClusterInfo:
        return cls(server=server, ca_data=base64.b64encode(ca_file.read_bytes()).decode())


def write_token_kubeconfig(
    path: Path,
    cluster: ClusterInfo,
    token: str,
    user: str,
    namespace: str | None = None,
) -> Path:
    """Write a one-context kubeconfig for `user` authenticating with `token`; return `path`."""
    cluster_entry: dict[str, Any] = {"server": cluster.server}
    if cluster.ca_data:
        cluster_entry["certificate-authority-data"] = cluster.ca_data
    if cluster.insecure:
        cluster_entry["insecure-skip-tls-verify"] = True
    context: dict[str, Any] = {"cluster": "switchyard-e2e", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "switchyard-e2e", "cluster": cluster_entry}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": context}],
        "current-context": user,
        "preferences": {},
    }
    path.touch(mode=0o600)  # it holds a credential
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
