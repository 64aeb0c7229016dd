"""Credentials for the API server, loaded by the official `kubernetes` client's loaders.

Called once per process by the CLI (`switchyard operator`, `switchyard gateway`), which
hands the resulting `Connection` to `client.Client`. Kubeconfig parsing is the official
client's, as Kopf's `login_via_client` does: every auth a kubeconfig can name works the
way kubectl's does — tokens, token files, client certificates, and exec credential
plugins (EKS, GKE, AKS and OIDC helpers) whose tokens expire and are fetched again. Only
the loading comes from there: requests stay on our async client.

Must not read the KUBECONFIG environment variable: a process started by a test must never
reach whatever cluster the developer's shell points at.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from switchyard_kube.client import Connection, Transient

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclasses.dataclass(frozen=True)
class _Refreshing:
    """The token of a loaded configuration, fetched again by its loader once expired."""

    configuration: k8s_client.Configuration

    def __call__(self) -> str | None:
        # get_api_key_with_prefix runs the loader's refresh hook first: an exec plugin runs
        # again once its token expired, an in-cluster token file is re-read each minute.
        try:
            # The loaders keep the token under "BearerToken" since kubernetes 37 and under
            # "authorization" before (both "Bearer <token>"); pyproject allows both.
            value = self.configuration.get_api_key_with_prefix(
                "BearerToken"
            ) or self.configuration.get_api_key_with_prefix("authorization")
        except (ConfigException, OSError) as exc:  # a failing plugin: retried with backoff
            raise Transient(0, "CredentialsUnavailable", str(exc)) from exc
        if not value:
            return None
        scheme, _, token = str(value).partition(" ")
        return token if scheme.lower() == "bearer" else str(value)


def load_kubeconfig(path: str | Path, context: str | None = None) -> Connection:
    """One context of a kubeconfig file, as kubectl would use it.

    Raises `ValueError` naming the file when it cannot be used (missing context, cluster
    or user, or an exec plugin that fails).
    """
    file = Path(path).expanduser()
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(
            config_file=str(file), context=context, client_configuration=configuration,
            persist_config=False,
        )
        contexts, active = k8s_config.list_kube_config_contexts(str(file))
    except (ConfigException, OSError) as exc:
        raise ValueError(f"{file}: {exc}") from exc
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    fields = (chosen or {}).get("context", {})
    conn = _connection(configuration, fields.get("namespace") or "default")
    token_file = _token_file(file, str(fields.get("user", "")))
    if token_file is not None:
        # The loader reads a tokenFile once (newline included); kubectl re-reads it, and a
        # projected token behind it rotates: ours is read on every request instead.
        conn = dataclasses.replace(conn, token_source=None, token_path=str(token_file))
    return conn


def load_in_cluster() -> Connection:
    """The pod's ServiceAccount credentials. Raises `ValueError` outside a cluster."""
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise ValueError(f"not running in a cluster: {exc}") from exc
    return _connection(configuration, _SA_NAMESPACE.read_text("utf-8").strip())


def load(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """An explicit kubeconfig, else in-cluster credentials, else ~/.kube/config.

    The KUBECONFIG environment variable is deliberately ignored (see the module docstring).
    Raises `ValueError` when none of the three is available.
    """
    if kubeconfig:
        return load_kubeconfig(kubeconfig, context)
    try:
        return load_in_cluster()
    except ValueError:
        home = Path("~/.kube/config").expanduser()
        if not home.is_file():
            raise ValueError(
                "not in a cluster, no --kubeconfig given and no ~/.kube/config"
            ) from None
        return load_kubeconfig(home, context)


def _token_file(kubeconfig: Path, user: str) -> Path | None:
    config = yaml.safe_load(kubeconfig.read_text("utf-8")) or {}
    for entry in config.get("users") or []:
        if entry.get("name") == user and (entry.get("user") or {}).get("tokenFile"):
            return kubeconfig.parent / str(entry["user"]["tokenFile"])
    return None


def _read(path: str | None) -> bytes | None:
    # The loaders hand inline certificate data over as temporary files; read them now.
    return Path(path).read_bytes() if path else None


def _connection(configuration: k8s_client.Configuration, namespace: str) -> Connection:
    return Connection(
        server=str(configuration.host).rstrip("/"),
        ca_data=_read(configuration.ssl_ca_cert),
        insecure=not configuration.verify_ssl,
        token_source=_Refreshing(configuration),
        certificate_data=_read(configuration.cert_file),
        private_key_data=_read(configuration.key_file),
        default_namespace=namespace,
    )
