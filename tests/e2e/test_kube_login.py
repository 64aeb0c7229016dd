"""Credentials loaded by the official client's loaders work against the real API server:
an exec credential plugin (as EKS, GKE, AKS and OIDC kubeconfigs use) whose token is fetched
again once it expires, and the operator and gateway CLIs starting on such a kubeconfig."""

from __future__ import annotations

import asyncio
import datetime
import json
import stat
import sys
from pathlib import Path

import yaml

from switchyard_kube import client, login
from switchyard_testing.cluster import Cluster


def _exec_kubeconfig(cluster: Cluster, tmp_path: Path, token: str, expires_in: int) -> Path:
    """A kubeconfig whose user is an exec plugin that prints `token` (and counts its runs)."""
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in)
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token,
                   "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    plugin = tmp_path / "credential-plugin"
    runs = tmp_path / "runs"
    plugin.write_text(
        f"#!{sys.executable}\n"
        "import pathlib\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "runs.write_text(str(int(runs.read_text() or 0) + 1) if runs.exists() else '1')\n"
        f"print({json.dumps(json.dumps(credential))})\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    info = cluster.cluster_info()
    entry: dict[str, object] = {"server": info.server}
    if info.ca_data:
        entry["certificate-authority-data"] = info.ca_data
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "plugin",
        "clusters": [{"name": "c", "cluster": entry}],
        "contexts": [{"name": "plugin", "context": {"cluster": "c", "user": "u",
                                                   "namespace": "team-x"}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
            "interactiveMode": "Never"}}}],
    }
    path = tmp_path / "exec.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def _runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


def _token(cluster: Cluster, namespace: str) -> str:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl("create", "role", "reader", "-n", namespace, "--verb=list",
                    "--resource=configmaps")
    cluster.kubectl("create", "rolebinding", "reader", "-n", namespace, "--role=reader",
                    f"--serviceaccount={namespace}:reader")
    return cluster.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()


async def _list_configmaps(conn: client.Connection, namespace: str, times: int) -> list[str]:
    names: list[str] = []
    async with client.Client(conn) as api:
        for _ in range(times):
            found = await api.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")
            names = [item["metadata"]["name"] for item in found["items"]]
    return names


def test_exec_plugin_kubeconfig_authenticates(cluster: Cluster, namespace: str,
                                              tmp_path: Path) -> None:
    path = _exec_kubeconfig(cluster, tmp_path, _token(cluster, namespace), expires_in=3600)
    conn = login.load_kubeconfig(path)
    assert conn.default_namespace == "team-x"
    names = asyncio.run(_list_configmaps(conn, namespace, times=3))
    assert "kube-root-ca.crt" in names  # the API server accepted the plugin's token
    assert _runs(tmp_path) == 1  # a token still valid is not fetched again


def test_exec_plugin_token_is_fetched_again_once_expired(cluster: Cluster, namespace: str,
                                                         tmp_path: Path) -> None:
    path = _exec_kubeconfig(cluster, tmp_path, _token(cluster, namespace), expires_in=-60)
    conn = login.load_kubeconfig(path)
    asyncio.run(_list_configmaps(conn, namespace, times=3))
    assert _runs(tmp_path) >= 3  # loaded once, then once per request while expired


def test_a_wrong_exec_token_is_refused_by_the_server(cluster: Cluster, namespace: str,
                                                      tmp_path: Path) -> None:
    path = _exec_kubeconfig(cluster, tmp_path, "not-a-token", expires_in=3600)
    conn = login.load_kubeconfig(path)
    try:
        asyncio.run(_list_configmaps(conn, namespace, times=1))
    except client.ApiError as exc:
        assert exc.status == 401
    else:
        raise AssertionError("the API server accepted a made-up token")
