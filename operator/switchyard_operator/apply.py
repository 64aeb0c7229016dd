"""Everything the reconciler asks of the API server (with `lease.py`, the only I/O modules).

Called by `reconcile.py`. Reads GatewayEndpoints and Secret metadata, creates or updates
the owned ConfigMap (never a ConfigMap owned by anything else) and repairs it when anyone
changed what the gateway relies on (data, labels, hash, signature), patches `status` through
the status subresource and queues Events through Kopf's poster. Conflicts (409) and
transient API errors become `kopf.TemporaryError(delay=...)`, so Kopf retries with backoff.
Secret values are never read: Secrets are fetched as metadata only.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import kopf

from switchyard_kube import client as kubeclient
from switchyard_kube import paths
from switchyard_operator import refs, render
from switchyard_schema import API_VERSION, PLURAL, GatewayEndpoint, contract, signing

T = TypeVar("T")
#: Kubernetes rejects longer Event messages; the cut keeps the start, which names the problem.
_EVENT_MESSAGE_MAX = 1000
_METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def _retry(op: str, exc: kubeclient.ApiError) -> kopf.TemporaryError:
    """The `kopf.TemporaryError` an API failure becomes (how soon to retry depends on it)."""
    if isinstance(exc, kubeclient.Conflict):
        return kopf.TemporaryError(f"{op}: conflict, retrying ({exc})", delay=1)
    if isinstance(exc, kubeclient.Transient):
        return kopf.TemporaryError(f"{op}: API server unavailable ({exc})", delay=5)
    # 403 (RBAC being fixed), 422 ...: retry slowly
    return kopf.TemporaryError(f"{op}: {exc}", delay=30)


async def _call(op: str, call: Awaitable[T]) -> T:
    """Await an API call, turning retryable failures into `kopf.TemporaryError`."""
    try:
        return await call
    except kubeclient.NotFound:
        raise
    except kubeclient.ApiError as exc:
        raise _retry(op, exc) from exc


def _endpoint_path(namespace: str, name: str, subresource: str = "") -> paths.ResourcePath:
    return paths.object_path(
        API_VERSION, PLURAL, name, namespace=namespace, subresource=subresource
    )


def _configmap_path(namespace: str, name: str = "") -> paths.ResourcePath:
    if not name:
        return paths.collection_path("v1", "configmaps", namespace=namespace)
    return paths.object_path("v1", "configmaps", name, namespace=namespace)


async def get_endpoint(
    client: kubeclient.Client, namespace: str, name: str
) -> dict[str, Any] | None:
    """The GatewayEndpoint, or None when it no longer exists."""
    try:
        obj: dict[str, Any] = await _call(
            "get endpoint", client.request("GET", _endpoint_path(namespace, name))
        )
    except kubeclient.NotFound:
        return None
    return obj


async def secret_state(client: kubeclient.Client, namespace: str, name: str) -> refs.SecretState:
    """Whether a Secret exists and carries the credential label (metadata only, no values).

    A name that is not a Secret name (`refs.valid_name`) is reported missing without a
    request: it must never steer the path into another namespace or resource.
    """
    if not refs.valid_name(name):
        return refs.SecretState(refs.Found.MISSING)
    try:
        path = paths.object_path("v1", "secrets", name, namespace=namespace)
        meta = await _call(
            "get secret metadata", client.request("GET", path, accept=_METADATA_ONLY)
        )
    except (kubeclient.NotFound, paths.InvalidPathSegment):
        # ``, `.`, `..` name no Secret: the path builder refuses them rather than address
        # the collection or step up a level.
        return refs.SecretState(refs.Found.MISSING)
    labels = (meta.get("metadata") or {}).get("labels") or {}
    if contract.is_credential(labels):
        # The credential index has not seen it yet; its keys are unknown until it does.
        return refs.SecretState(refs.Found.LABELLED, None)
    return refs.SecretState(refs.Found.UNLABELLED)


class SigningKeyUnavailable(Exception):
    """The signing-key Secret cannot be read or holds no usable key (the message says why)."""


async def signing_keys(client: kubeclient.Client, namespace: str, name: str) -> signing.SigningKeys:
    """Read the signing keys from their Secret. Raises `SigningKeyUnavailable`.

    The operator reads them once at start: a rotation takes effect on its next start,
    when the resume re-signs every ConfigMap (docs/security.md).
    """
    try:
        path = paths.object_path("v1", "secrets", name, namespace=namespace)
        secret = await client.request("GET", path)
    except (kubeclient.ApiError, paths.InvalidPathSegment) as exc:
        raise SigningKeyUnavailable(f"Secret {namespace}/{name}: {exc}") from exc
    try:
        return signing.keys_from_secret(secret.get("data"))
    except signing.BadSigningKey as exc:
        raise SigningKeyUnavailable(f"Secret {namespace}/{name}: {exc}") from exc


class Written(enum.Enum):
    """What `ensure_configmap` did."""

    CREATED = "created"
    UPDATED = "updated"
    #: Same spec, but someone else changed the ConfigMap: put back (`detail` says what).
    REPAIRED = "repaired"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The result of `ensure_configmap`; `detail` explains a conflict or a repair."""

    written: Written
    detail: str = ""
    #: The signature the live ConfigMap now carries (empty on a conflict).
    signature: str = ""


def _owner_text(existing: dict[str, Any]) -> str:
    for ref in existing.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"its controller is {ref.get('kind')}/{ref.get('name')} (uid {ref.get('uid')})"
    return "it has no controller ownerReference"


async def ensure_configmap(
    client: kubeclient.Client,
    manifest: dict[str, Any],
    endpoint: GatewayEndpoint,
    rendered_at: str,
    keys: signing.SigningKeys,
    first: bool = False,
) -> Outcome:
    """Create, update or repair the endpoint's signed ConfigMap; no write when it is as rendered.

    A ConfigMap of that name whose controller is not this endpoint is left alone
    (`Written.CONFLICT`). `first` (the endpoint was never rendered): create without
    looking first, one request instead of two; a ConfigMap already there (409) is then
    compared as usual. Raises `kopf.TemporaryError` on conflicts and transient errors.
    """
    namespace, name = endpoint.namespace, manifest["metadata"]["name"]
    desired = render.with_runtime_fields(manifest, endpoint, rendered_at, keys.current)
    signature = str(desired["metadata"]["annotations"][signing.ANNOTATION])
    if first and await _created(client, namespace, desired):
        return Outcome(Written.CREATED, signature=signature)
    try:
        existing: dict[str, Any] = await _call(
            "get configmap", client.request("GET", _configmap_path(namespace, name))
        )
    except kubeclient.NotFound:
        await _call(
            "create configmap",
            client.request("POST", _configmap_path(namespace), body=desired),
        )
        return Outcome(Written.CREATED, signature=signature)
    if render.controller_uid(existing) != endpoint.uid:
        return Outcome(
            Written.CONFLICT,
            f"ConfigMap {namespace}/{name} already exists and is not owned by this"
            f" GatewayEndpoint ({_owner_text(existing)}); the operator will not adopt or"
            " overwrite it: delete or rename it",
        )
    changed = render.drift(existing, desired)
    if not changed:
        return Outcome(Written.UNCHANGED, signature=signature)
    desired["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
    await _call(
        "update configmap", client.request("PUT", _configmap_path(namespace, name), body=desired)
    )
    if render.tampered(existing, endpoint, keys, changed):
        return Outcome(Written.REPAIRED, ", ".join(changed), signature)
    return Outcome(Written.UPDATED, signature=signature)


async def _created(client: kubeclient.Client, namespace: str, desired: dict[str, Any]) -> bool:
    """POST the ConfigMap; False when one of that name exists already (409)."""
    try:
        await client.request("POST", _configmap_path(namespace), body=desired)
    except kubeclient.Conflict:
        return False
    except kubeclient.ApiError as exc:
        raise _retry("create configmap", exc) from exc
    return True


async def patch_status(
    client: kubeclient.Client, namespace: str, name: str, status: dict[str, Any]
) -> None:
    """Merge-patch `status` through the status subresource (a vanished endpoint is ignored)."""
    try:
        await _call(
            "patch status",
            client.request(
                "PATCH",
                _endpoint_path(namespace, name, "status"),
                body={"status": status},
                content_type="application/merge-patch+json",
            ),
        )
    except kubeclient.NotFound:
        return


def post_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """Queue an Event about the endpoint (Kopf posts it in the background)."""
    if len(message) > _EVENT_MESSAGE_MAX:
        message = message[: _EVENT_MESSAGE_MAX - 3] + "..."
    kopf.event(kopf.Body(cast(kopf.RawBody, body)), type=type_, reason=reason, message=message)
