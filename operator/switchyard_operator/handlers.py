"""Kopf wiring only: which events reach `reconcile.py`, and the operator's settings.

Imported by `switchyard operator` (which runs Kopf in-process with these handlers in the
default registry). The shared `reconcile.Runtime` arrives through Kopf's `memo`. Handlers
return None: Kopf would otherwise store return values in `status`, which `reconcile.py`
writes itself through the status subresource.

Secrets are watched only through a server-side label selector
(`switchyard.dev/credential=true`, set in `configure`), never as a stream of every Secret;
the operator indexes their key names (never values) and writes nothing onto them. The
rendered ConfigMaps are watched the same way (`app.kubernetes.io/managed-by=
switchyard-operator`), so an edit, a relabel (the object leaves the selection: a DELETED
event) or a deletion re-reconciles the owner, which restores the payload and signature.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from switchyard_operator import bookkeeping, reconcile, refs
from switchyard_schema import GROUP, PLURAL, VERSION, contract

logger = logging.getLogger(__name__)

ENDPOINTS = (GROUP, VERSION, PLURAL)
CREDENTIALS = {contract.CREDENTIAL_LABEL: contract.CREDENTIAL_VALUE}
PREFIX = "switchyard.dev"
DIFFBASE = bookkeeping.MemoryDiffBase(PREFIX)


@kopf.on.startup()
def configure(*, settings: kopf.OperatorSettings, **_: Any) -> None:
    """Bookkeeping under `switchyard.dev/` annotations, label-selected Secret watch, events."""
    # Neither writes an annotation when a handler succeeds at once (`bookkeeping.py`).
    settings.persistence.progress_storage = bookkeeping.ProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = DIFFBASE
    # Server-side filtering: the `labels=` filters below are client-side only.
    settings.watching.label_selectors["v1", "secrets"] = contract.CREDENTIAL_SELECTOR
    settings.watching.label_selectors["v1", "configmaps"] = contract.MANAGED_BY_SELECTOR
    # Our own Events (kopf.event) are always posted; Kopf's log lines only from warnings up.
    settings.posting.level = logging.WARNING
    # No CRD or namespace watching (and so no RBAC for them): the CRD is installed before
    # the operator starts (the chart does so), and the namespaces are given exactly.
    settings.scanning.disabled = True
    settings.execution.max_workers = 4


@kopf.on.login()
def login(*, memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """Hand Kopf the same credentials the operator's own client uses."""
    conn = memo.runtime.client.conn
    return kopf.ConnectionInfo(
        server=conn.server,
        ca_data=conn.ca_data,
        insecure=conn.insecure,
        token=conn.bearer(),
        scheme="Bearer" if conn.bearer() else None,
        certificate_data=conn.certificate_data,
        private_key_data=conn.private_key_data,
        default_namespace=conn.default_namespace,
    )


@kopf.index("v1", "secrets", labels=CREDENTIALS)
def credentials(*, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """(namespace, secret) -> frozenset of its key names (values are dropped here)."""
    data = body.get("data") or {}
    return {(namespace, name): frozenset(data)}


@kopf.index(*ENDPOINTS)
def endpoints_by_secret(
    *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[Any, Any]:
    """(namespace, secret) -> names of the endpoints that reference it."""
    # A shallow copy of the two lists' holders: Kopf runs this on every event of every
    # endpoint (status writes too), and a deep copy of the whole spec showed in profiles.
    lists = {f: spec.get(f) for f in ("trafficSplit", "fallbacks")}
    return {(namespace, secret): name for secret in refs.secret_names(lists)}


@kopf.on.resume(*ENDPOINTS)
@kopf.on.create(*ENDPOINTS)
@kopf.on.update(*ENDPOINTS)
async def endpoint_changed(*, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """Reconcile the endpoint (`credentials` is the index above, passed by name)."""
    await reconcile.reconcile(memo.runtime, body, kwargs["credentials"])


def _deleted(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


@kopf.on.event(*ENDPOINTS, when=_deleted)
async def endpoint_deleted(*, uid: str | None, namespace: str | None, name: str, memo: Any,
                           **_: Any) -> None:
    """Forget what this process holds about a deleted endpoint (its ConfigMap goes with it
    through the ownerReference)."""
    DIFFBASE.forget(str(uid or ""))
    reconcile.forget(memo.runtime, str(namespace), name)


@kopf.on.event("v1", "secrets", labels=CREDENTIALS)
async def credential_changed(
    *, type: str | None, namespace: str | None, name: str, memo: Any, **kwargs: Any
) -> None:
    """Re-reconcile the endpoints that reference a credential Secret that changed or went.

    `credentials` and `endpoints_by_secret` are the indices above, passed by name.
    """
    credentials: kopf.Index[Any, Any] = kwargs["credentials"]
    endpoints_by_secret: kopf.Index[Any, Any] = kwargs["endpoints_by_secret"]
    if type is None:  # the initial listing: every endpoint reconciles on resume anyway
        return
    for endpoint in sorted(set(endpoints_by_secret.get((namespace, name), []))):
        try:
            await reconcile.reconcile_named(memo.runtime, str(namespace), endpoint, credentials)
        except kopf.PermanentError:
            pass  # already reported in the endpoint's status and Events
        except kopf.TemporaryError as exc:
            logger.warning(
                "re-reconciling %s/%s after Secret %s changed: %s", namespace, endpoint, name, exc
            )


@kopf.on.event("v1", "configmaps")  # server-side label-selected in `configure`
async def configmap_changed(
    *, type: str | None, namespace: str | None, body: kopf.Body, memo: Any, **kwargs: Any
) -> None:
    """Repair drift: re-reconcile the owner of a rendered ConfigMap that changed or went.

    No client-side `labels=` filter: a relabelled ConfigMap arrives as DELETED without them.
    """
    if type is None:  # the initial listing: every endpoint reconciles on resume anyway
        return
    try:
        await reconcile.repair(
            memo.runtime, type, str(namespace), reconcile.plain(body), kwargs["credentials"]
        )
    except kopf.PermanentError:
        pass  # already reported in the endpoint's status and Events
    except kopf.TemporaryError as exc:
        name = body.get("metadata", {}).get("name")
        logger.warning("repairing ConfigMap %s/%s: %s", namespace, name, exc)
