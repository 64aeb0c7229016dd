"""One reconciliation of one GatewayEndpoint: validate -> render -> apply -> status.

Called by `handlers.py` (on create, update, resume, when a credential Secret the
endpoint references changes, and when its ConfigMap was edited, relabelled or deleted:
drift is repaired by rendering again). The decisions live in the pure modules (`validate`,
`refs`, `render`, `status`); the I/O in `apply`. Validation comes first: the Secrets of a
spec that fails it are never looked up. A spec that fails validation or policy gets
`Ready=False` and raises `kopf.PermanentError`, leaving the last rendered ConfigMap as it
was. Endpoints are reconciled one at a time each (a per-endpoint lock), so a Secret event
and a spec change cannot interleave their writes. With gateway reports, a new endpoint's
first status is held back until a replica serves it (`Runtime.pending`, written by
`served_status.py`), so a new endpoint costs one status write, not two.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Collection, Mapping
from typing import Any

import kopf

from switchyard_kube import client as kubeclient
from switchyard_operator import apply, refs, render, served, status, validate
from switchyard_operator.reports import Reports
from switchyard_schema import GatewayEndpoint, normalize, signing, targets_summary
from switchyard_schema.policy import PlatformPolicy

#: Drift repair retries a conflicting or failed write this often, waiting at most this long.
_REPAIR_ATTEMPTS, _REPAIR_MAX_DELAY = 4, 5.0
#: (namespace, secret name) -> key names, from the label-selected Secret watch.
CredentialIndex = Mapping[tuple[str, str], Collection[frozenset[str]]]


@dataclasses.dataclass(frozen=True, slots=True)
class FirstStatus:
    """A new endpoint's first status, held until a replica serves it or `deadline`."""

    conditions: tuple[status.Condition, ...]  # Accepted and ResolvedRefs
    summary: status.Summary  # without the served fields
    generation: int
    deadline: float  # time.monotonic()


#: How long a new endpoint's first status waits for a replica to serve it.
FIRST_STATUS_GRACE = 5.0


@dataclasses.dataclass
class Runtime:
    """What every reconciliation shares: the API client, policy, signing keys and locks."""

    client: kubeclient.Client
    policy: PlatformPolicy
    keys: signing.SigningKeys
    locks: collections.defaultdict[tuple[str, str], asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    #: (namespace, endpoint) -> the signature this process last wrote or found current. A
    #: ConfigMap event carrying another one (an older payload of ours replayed, say) is
    #: drift even though it verifies.
    signed: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    #: The gateway replicas' reports; None (no `--gateway-reports-namespace`): the
    #: transitional mode where `Ready` means rendered (docs/operator.md "Status").
    reports: Reports | None = None
    #: (namespace, endpoint) -> (spec hash, target names) of the last good render, and the
    #: served assessment last written for it (`served_status` writes only on a change).
    rendered: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = dataclasses.field(
        default_factory=dict)
    assessed: dict[tuple[str, str], tuple[Any, ...]] = dataclasses.field(default_factory=dict)
    #: New endpoints whose first status waits for a replica to serve them
    #: (`served_status.py` writes it).
    pending: dict[tuple[str, str], FirstStatus] = dataclasses.field(default_factory=dict)
    #: (reports version, live replicas) at the last full pass of `served_status`.
    reports_seen: tuple[int, frozenset[str]] | None = None


def plain(value: Any) -> Any:
    """A deep plain-dict/list copy of a Kopf body view (so pure code sees ordinary JSON)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


async def _secret_states(
    rt: Runtime, namespace: str, names: Collection[str], credentials: CredentialIndex
) -> dict[str, refs.SecretState]:
    out: dict[str, refs.SecretState] = {}
    for name in sorted(names):
        store = credentials.get((namespace, name))
        if store:
            out[name] = refs.SecretState(refs.Found.LABELLED, next(iter(store)))
        else:
            out[name] = await apply.secret_state(rt.client, namespace, name)
    return out


async def _refs_condition(
    rt: Runtime, namespace: str, spec: Any, credentials: CredentialIndex
) -> tuple[status.Condition, list[refs.Unresolved]]:
    found_refs = refs.secret_refs(spec)
    states = await _secret_states(rt, namespace, {r.name for r in found_refs}, credentials)
    unresolved = refs.resolve(namespace, found_refs, states)
    if not unresolved:
        return status.Condition(
            status.RESOLVED_REFS,
            status.TRUE,
            "AllRefsResolved",
            "every referenced Secret and key exists and is labelled"
            if found_refs
            else "no Secret referenced",
        ), []
    reason, message = refs.describe(unresolved)
    return status.Condition(status.RESOLVED_REFS, status.FALSE, reason, message), unresolved


async def _write_status(
    rt: Runtime,
    body: dict[str, Any],
    conditions: list[status.Condition],
    summary: status.Summary,
) -> list[Mapping[str, Any]]:
    """Patch status when it changed; return the conditions that transitioned."""
    meta = body["metadata"]
    previous = body.get("status") or {}
    new = status.build(
        previous, conditions, summary, int(meta.get("generation") or 1), status.now_rfc3339()
    )
    if status.changed(previous, new):
        await apply.patch_status(rt.client, meta["namespace"], meta["name"], new)
    return status.transitions(previous.get("conditions") or [], new["conditions"])


async def reconcile(rt: Runtime, body: Mapping[str, Any], credentials: CredentialIndex) -> None:
    """Reconcile one endpoint (see the module docstring). Raises Kopf's retry errors."""
    manifest = plain(body)
    meta = manifest["metadata"]
    async with rt.locks[(meta["namespace"], meta["name"])]:
        await _reconcile(rt, manifest, credentials)


async def _reconcile(rt: Runtime, body: dict[str, Any], credentials: CredentialIndex) -> None:
    namespace = body["metadata"]["namespace"]
    verdict = validate.check(body, rt.policy)
    if verdict.schema:
        refs_cond = status.Condition(
            status.RESOLVED_REFS,
            status.UNKNOWN,
            "InvalidSpec",
            "Secrets are not looked up while the spec is invalid",
        )
    else:
        refs_cond, _ = await _refs_condition(rt, namespace, body.get("spec"), credentials)
    endpoint = verdict.endpoint
    if endpoint is None or verdict.policy:
        await _reject(
            rt,
            body,
            refs_cond,
            verdict.problems,
            "InvalidSpec" if verdict.schema else "PolicyViolation",
        )
        return
    config = normalize(endpoint)
    manifest = render.configmap(endpoint, config)
    # Never rendered (no ConfigMap named in its status): create without a look first.
    first = not (body.get("status") or {}).get("configMapName")
    outcome = await apply.ensure_configmap(
        rt.client, manifest, endpoint, render.rfc3339_now(), rt.keys, first=first
    )
    if outcome.signature:
        rt.signed[(endpoint.namespace, endpoint.name)] = outcome.signature
    accepted = status.Condition(
        status.ACCEPTED,
        status.TRUE,
        "Valid",
        "the spec passed validation and the platform's policy",
    )
    ready = _ready(endpoint, config.spec_hash, outcome, refs_cond)
    conditions = [ready, accepted, refs_cond]
    key = (endpoint.namespace, endpoint.name)
    names = tuple(dict.fromkeys(t.name for t in (*config.traffic_split, *config.fallbacks)))
    assessment = None
    if rt.reports is not None and ready.status == status.TRUE:
        rt.rendered[key] = (config.spec_hash, names)
        assessment = served.assess(rt.reports.all(), f"{key[0]}/{key[1]}", config.spec_hash,
                                   names, time.time())
        rt.assessed[key] = fingerprint(assessment)
        conditions = [assessment.ready, accepted, refs_cond, assessment.degraded]
    else:
        rt.rendered.pop(key, None)
    summary = status.Summary(
        config_map_name=manifest["metadata"]["name"]
        if outcome.written is not apply.Written.CONFLICT
        else None,
        spec_hash=config.spec_hash if outcome.written is not apply.Written.CONFLICT else None,
        targets=targets_summary(config),
        fallback_count=len(config.fallbacks),
        serving_replicas=assessment.serving if assessment else None,
        target_health=assessment.targets if assessment else None,
    )
    before = {str(c.get("type")) for c in (body.get("status") or {}).get("conditions") or []}
    if assessment is not None and assessment.live and not body.get("status") \
            and assessment.ready.status != status.TRUE:
        # A new endpoint no live replica serves yet (none can: its ConfigMap is seconds
        # old). Its first status waits for the report that serves it, at most
        # FIRST_STATUS_GRACE s: one status write, not NotServedYet and then Served.
        rt.pending[key] = FirstStatus((accepted, refs_cond), dataclasses.replace(
            summary, serving_replicas=None, target_health=None),
            int(body["metadata"].get("generation") or 1), time.monotonic() + FIRST_STATUS_GRACE)
        moved = status.transitions([], status.build(
            {}, conditions, summary, 1, status.now_rfc3339())["conditions"])
    else:
        rt.pending.pop(key, None)
        moved = await _write_status(rt, body, conditions, summary)
    _post_events(body, moved, before, outcome, manifest["metadata"]["name"], config.spec_hash)
    if outcome.written is apply.Written.CONFLICT:
        # Nothing watches the foreign ConfigMap; look again later.
        raise kopf.TemporaryError(outcome.detail, delay=60)


def _ready(
    endpoint: GatewayEndpoint,
    spec_hash: str,
    outcome: apply.Outcome,
    refs_cond: status.Condition,
) -> status.Condition:
    name = render.configmap_name(endpoint.name)
    if outcome.written is apply.Written.CONFLICT:
        return status.Condition(status.READY, status.FALSE, "ConfigMapConflict", outcome.detail)
    if refs_cond.status != status.TRUE:
        return status.Condition(
            status.READY,
            status.FALSE,
            "UnresolvedRefs",
            f"rendered to ConfigMap {name} ({spec_hash}), but targets that need an"
            f" unresolved Secret will fail: {refs_cond.message}",
        )
    return status.Condition(
        status.READY, status.TRUE, "Rendered", f"rendered to ConfigMap {name} ({spec_hash})"
    )


async def _reject(
    rt: Runtime,
    body: dict[str, Any],
    refs_cond: status.Condition,
    problems: list[Any],
    reason: str,
) -> None:
    message = validate.describe(problems)
    meta = body["metadata"]
    rt.pending.pop((meta["namespace"], meta["name"]), None)
    keep = "; the last rendered ConfigMap (if any) keeps serving"
    conditions = [
        status.Condition(status.READY, status.FALSE, reason, message + keep),
        status.Condition(status.ACCEPTED, status.FALSE, reason, message),
        refs_cond,
    ]
    moved = await _write_status(rt, body, conditions, status.Summary(None, None, None, None))
    for cond in moved:
        if cond["type"] == status.ACCEPTED:
            apply.post_event(body, "Warning", "Rejected", message)
        elif cond["type"] == status.RESOLVED_REFS and cond["status"] != status.TRUE:
            apply.post_event(body, "Warning", str(cond["reason"]), str(cond["message"]))
    raise kopf.PermanentError(f"rejected ({reason}): {message}")


#: What `ensure_configmap` did that gets the `Rendered` Event.
_RENDERED = (apply.Written.CREATED, apply.Written.UPDATED)


def _post_events(
    body: dict[str, Any],
    moved: list[Mapping[str, Any]],
    before: Collection[str],
    outcome: apply.Outcome,
    cm_name: str,
    spec_hash: str,
) -> None:
    """Events for what this reconciliation did and the conditions it moved.

    `before`: the condition types the status held. A condition seen for the first time
    and fine (a new endpoint, Accepted and its refs resolved) gets no Event of its own:
    the `Rendered` Event says so, and one Event per new endpoint instead of three keeps a
    bulk apply's API writes down. A recovery (False before) still gets its Normal Event.
    """
    if outcome.written in _RENDERED:
        apply.post_event(
            body, "Normal", "Rendered", f"ConfigMap {cm_name} {outcome.written.value} ({spec_hash})"
        )
    elif outcome.written is apply.Written.REPAIRED:
        apply.post_event(
            body,
            "Warning",
            "ConfigMapRepaired",
            f"ConfigMap {cm_name} was changed by someone other than the operator"
            f" ({outcome.detail}); the rendered payload and signature are restored",
        )
    for cond in moved:
        kind, ok = cond["type"], cond["status"] == status.TRUE
        if ok and kind not in before and outcome.written in _RENDERED:
            continue  # first seen and fine: said by the Rendered Event
        if kind == status.ACCEPTED and ok:
            apply.post_event(body, "Normal", "Accepted", str(cond["message"]))
        elif kind == status.RESOLVED_REFS and not ok:
            apply.post_event(body, "Warning", str(cond["reason"]), str(cond["message"]))
        elif kind == status.RESOLVED_REFS:
            apply.post_event(body, "Normal", "RefsResolved", str(cond["message"]))
        elif kind == status.READY and cond["reason"] == "ConfigMapConflict":
            apply.post_event(body, "Warning", "ConfigMapConflict", str(cond["message"]))


async def reconcile_named(
    rt: Runtime, namespace: str, name: str, credentials: CredentialIndex
) -> None:
    """Fetch an endpoint and reconcile it (a vanished endpoint is ignored)."""
    body = await apply.get_endpoint(rt.client, namespace, name)
    if body is None:
        rt.signed.pop((namespace, name), None)
        return
    await reconcile(rt, body, credentials)


def forget(rt: Runtime, namespace: str, name: str) -> None:
    """Drop what the runtime holds about a deleted endpoint (its lock too, when free)."""
    key = (namespace, name)
    for table in (rt.signed, rt.rendered, rt.assessed, rt.pending):
        table.pop(key, None)
    lock = rt.locks.get(key)
    if lock is not None and not lock.locked():
        del rt.locks[key]


def owner_of(configmap: Mapping[str, Any]) -> str | None:
    """The endpoint a rendered ConfigMap belongs to: its controller, else its `gwe-` name."""
    meta = configmap.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "GatewayEndpoint":
            return str(ref.get("name"))
    name = str(meta.get("name") or "")
    return name.removeprefix("gwe-") if name.startswith("gwe-") else None


async def repair(
    rt: Runtime, event: str, namespace: str, configmap: dict[str, Any], credentials: CredentialIndex
) -> None:
    """Reconcile the owner of a rendered ConfigMap that changed or went (drift repair).

    The reconciliation compares the live ConfigMap with the render and puts it back. The
    operator's own writes come back here too: a ConfigMap still exactly as signed is left
    alone without a request (a new spec reaches the endpoint handler anyway).
    """
    owner = owner_of(configmap)
    if owner is None:
        return
    if event != "DELETED":
        # Under the lock: the event of our own write may come before that write's answer,
        # and `rt.signed` is current only once the reconciliation holding it is done.
        async with rt.locks[(namespace, owner)]:
            if _as_written(rt, namespace, owner, configmap):
                return
    for attempt in range(_REPAIR_ATTEMPTS):
        try:
            await reconcile_named(rt, namespace, owner, credentials)
            return
        except kopf.TemporaryError as exc:
            # An event handler is not retried by Kopf: retry a write race (409) or a blip
            # here, a few times; a slow retry (a foreign ConfigMap) is left to the endpoint.
            if attempt + 1 == _REPAIR_ATTEMPTS or (exc.delay or 0) > _REPAIR_MAX_DELAY:
                raise
            await asyncio.sleep(exc.delay or 1)


def _as_written(rt: Runtime, namespace: str, owner: str, configmap: dict[str, Any]) -> bool:
    annotations = (configmap.get("metadata") or {}).get("annotations") or {}
    last = rt.signed.get((namespace, owner))
    return (
        last is not None
        and annotations.get(signing.ANNOTATION) == last
        and render.intact(configmap, rt.keys)
    )


def fingerprint(assessment: served.Served) -> tuple[Any, ...]:
    """What `served_status` compares to decide whether an assessment changed."""
    return (assessment.ready, assessment.degraded, assessment.serving, repr(assessment.targets))
