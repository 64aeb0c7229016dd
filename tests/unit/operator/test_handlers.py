"""handlers.py settings: bookkeeping prefix and the server-side Secret label selector.

Kopf's `labels=` handler filters are client-side; only `settings.watching.label_selectors`
reaches the API server (Kopf puts it into the `labelSelector` query parameter of both the
initial list and the watch). This test pins that Secrets are selected by the credential
label and ConfigMaps (watched for drift repair) by the operator's managed-by label.
"""

from __future__ import annotations

import kopf
from kopf._cogs.structs import references

from switchyard_operator import bookkeeping, handlers


def _settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    handlers.configure(settings=settings)
    return settings


def test_secrets_are_listed_and_watched_by_label_only() -> None:
    selectors = _settings().watching.label_selectors
    secrets = references.Resource("", "v1", "secrets", kind="Secret", namespaced=True)
    configmaps = references.Resource("", "v1", "configmaps", kind="ConfigMap", namespaced=True)
    endpoints = references.Resource(
        "switchyard.dev", "v1alpha1", "gatewayendpoints", kind="GatewayEndpoint", namespaced=True
    )
    assert list(selectors.collect(secrets)) == ["switchyard.dev/credential=true"]
    assert list(selectors.collect(configmaps)) == [
        "app.kubernetes.io/managed-by=switchyard-operator"
    ]
    assert list(selectors.collect(endpoints)) == []


def test_bookkeeping_uses_the_switchyard_prefix() -> None:
    persistence = _settings().persistence
    assert isinstance(persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert persistence.progress_storage.prefix == "switchyard.dev"
    # The diff base is kept in memory: no annotation, no PATCH per handled endpoint.
    assert isinstance(persistence.diffbase_storage, bookkeeping.MemoryDiffBase)
