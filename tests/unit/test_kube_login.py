"""`switchyard_kube.login`: kubeconfig files read by the official client's loaders."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from switchyard_kube import login

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _write(tmp_path: Path, user: dict[str, object], namespace: str | None = None) -> Path:
    context: dict[str, object] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "c", "cluster": {
            "server": "https://127.0.0.1:6443/",
            "certificate-authority-data": base64.b64encode(CA).decode()}}],
        "contexts": [{"name": "main", "context": context},
                     {"name": "other", "context": {"cluster": "c", "user": "u",
                                                   "namespace": "elsewhere"}}],
        "users": [{"name": "u", "user": user}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_token_kubeconfig(tmp_path: Path) -> None:
    conn = login.load_kubeconfig(_write(tmp_path, {"token": "abc"}, namespace="team-a"))
    assert conn.server == "https://127.0.0.1:6443"
    assert conn.ca_data == CA
    assert conn.bearer() == "abc"
    assert conn.default_namespace == "team-a"
    assert "abc" not in repr(conn)


def test_token_file_is_read_on_every_request(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    conn = login.load_kubeconfig(_write(tmp_path, {"tokenFile": str(tmp_path / "token")}))
    assert conn.bearer() == "from-file"
    assert conn.default_namespace == "default"
    (tmp_path / "token").write_text("rotated\n")  # a projected token behind the file rotates
    assert conn.bearer() == "rotated"


def test_named_context_wins(tmp_path: Path) -> None:
    conn = login.load_kubeconfig(_write(tmp_path, {"token": "abc"}), context="other")
    assert conn.default_namespace == "elsewhere"


def test_unusable_kubeconfig_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"token": "abc"})
    with pytest.raises(ValueError, match=str(path)):
        login.load_kubeconfig(path, context="missing")


def test_kubeconfig_environment_variable_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_write(tmp_path, {"token": "abc"})))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ValueError, match="no --kubeconfig given"):
        login.load()


def test_a_failing_credential_plugin_keeps_the_process_up(tmp_path: Path) -> None:
    """The plugin's token expired and the plugin now fails (say the cloud's IAM is down):
    the loader logs it and keeps the expired token, so the API server answers 401, an
    `ApiError` that the watches retry with backoff; nothing crashes."""
    import json
    import sys

    runs = tmp_path / "runs"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": "t", "expirationTimestamp": "2000-01-01T00:00:00Z"}}
    plugin = tmp_path / "plugin"
    plugin.write_text(
        f"#!{sys.executable}\nimport pathlib, sys\np = pathlib.Path({str(runs)!r})\n"
        "if p.exists(): sys.exit('IAM unreachable')\np.write_text('1')\n"
        f"print({json.dumps(json.dumps(credential))})\n"
    )
    plugin.chmod(0o755)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                     "command": str(plugin), "interactiveMode": "Never"}}
    conn = login.load_kubeconfig(_write(tmp_path, user))
    assert conn.bearer() == "t"
    assert runs.exists()  # the plugin was asked again, and failed
