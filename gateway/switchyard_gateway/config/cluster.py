"""In-cluster config source: the operator's ConfigMaps and labelled Secrets, watched live.

Created by `serve.build_app` in cluster mode. Fills the `ConfigStore` and the
`Credentials` table from three list-then-watches per watched namespace (or one each,
cluster-wide): GatewayEndpoints (only to know which UIDs are live), ConfigMaps labelled
`app.kubernetes.io/managed-by=switchyard-operator`, and Secrets labelled
`switchyard.dev/credential=true` (the names live in `switchyard_schema.contract`). The
selectors are sent to the API server, so a foreign ConfigMap or an unlabelled Secret never
reaches this process. A ConfigMap is accepted only when its controller ownerReference
names a live GatewayEndpoint with that UID, its name and payload agree with that owner,
its payload fully validates (`load_config`), and `trust.py` finds it signed by the
operator and within the platform policy: a forged label cannot bypass admission, a
tenant's edit cannot pass for the operator's, and a refused payload leaves the last good
config live. Only the Secret values some served endpoint references are kept
(`credential_cache`); a newly referenced key dropped earlier is fetched with a GET of that
one Secret, which must carry the label too. Writes nothing but Events.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from switchyard_gateway.config import credential_cache
from switchyard_gateway.config import trust as trusted
from switchyard_gateway.config.store import ChangeKind, ConfigStore
from switchyard_gateway.credentials import Credentials
from switchyard_kube import paths
from switchyard_kube.client import ApiError, Client, NotFound
from switchyard_kube.reflector import Obj, Reflector
from switchyard_schema import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    EndpointConfig,
    InvalidEndpoint,
    Problem,
    contract,
    is_credential,
    load_config,
)

log = logging.getLogger(__name__)

SOURCE = "configmap"
#: `refused` reasons (bounded; `trust.REASONS`): among them a ConfigMap that claims to be
#: ours but has no live owner of that UID and name, and a payload that does not validate.
FORGED, INVALID = trusted.FORGED, trusted.INVALID
REFUSAL_REASONS = trusted.REASONS
#: GETs of one Secret before giving up until the next config change asks again.
_FETCH_ATTEMPTS = 4

Key = tuple[str, str]  # (namespace, name)


@dataclasses.dataclass
class ClusterHooks:
    """Callbacks for metrics; all optional."""

    propagation: Callable[[float], None] = lambda seconds: None
    refused: Callable[[str], None] = lambda reason: None  # one of REFUSAL_REASONS


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata", {})
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _controller(cm: Obj) -> dict[str, Any] | None:
    for ref in cm.get("metadata", {}).get("ownerReferences", []) or []:
        if (
            ref.get("controller")
            and ref.get("kind") == KIND
            and str(ref.get("apiVersion", "")).startswith(GROUP + "/")
        ):
            return dict(ref)
    return None


def _parse_time(text: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class ClusterSource:
    """Runs the watches and keeps the store and credentials in step with the cluster."""

    sync_in_background = True

    def __init__(
        self,
        client: Client,
        store: ConfigStore,
        credentials: Credentials,
        namespaces: Iterable[str] = (),
        hooks: ClusterHooks | None = None,
        trust: trusted.Trust | None = None,
    ) -> None:
        self._client = client
        self._trust = trust  # None: no signature or policy check (tests of the watches only)
        self._store = store
        self._credentials = credentials
        self._hooks = hooks or ClusterHooks()
        self._namespaces = [n for n in namespaces if n] or [""]
        self._endpoints: dict[Key, str] = {}  # live GatewayEndpoints -> uid
        self._configmaps: dict[Key, Obj] = {}
        self._credential_cache = credential_cache.CredentialCache()
        self._fetches: dict[credential_cache.SecretKey, asyncio.Task[None]] = {}
        self._applied: dict[str, str] = {}  # endpoint key -> resourceVersion applied
        # The Secret keys each served endpoint references, and how many reference each:
        # an event re-reads only its own endpoint, not every served one.
        self._refs: dict[str, frozenset[credential_cache.Ref]] = {}
        self._wanted: collections.Counter[credential_cache.Ref] = collections.Counter()
        self._refused: dict[str, str] = {}  # endpoint key/cm -> resourceVersion refused
        self._lock = asyncio.Lock()
        self._event_tasks: set[asyncio.Task[None]] = set()  # referenced until done
        self._tasks: list[asyncio.Task[None]] = []
        self._synced = False
        self.reflectors: list[Reflector] = []
        for ns in self._namespaces:
            self.reflectors += self._reflectors_for(ns)

    def _reflectors_for(self, ns: str) -> list[Reflector]:
        kinds: list[tuple[str, str, str, str]] = [
            ("endpoints", API_VERSION, PLURAL, ""),
            ("configmaps", "v1", "configmaps", contract.MANAGED_BY_SELECTOR),
            ("secrets", "v1", "secrets", contract.CREDENTIAL_SELECTOR),
        ]
        return [
            Reflector(
                self._client,
                paths.collection_path(api_version, resource, namespace=ns),
                label_selector=selector,
                on_replace=self._replacer(kind, ns),
                on_event=self._eventer(kind),
            )
            for kind, api_version, resource, selector in kinds
        ]

    # Lifecycle: the `Source` protocol of `config/sources.py`.

    async def sync(self) -> None:
        """Start the watches; return once every first list is in and applied."""
        await self._client.__aenter__()
        try:
            await self._first_sync()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop every watch and close the API connection (idempotent)."""
        pending = [*self._tasks, *self._event_tasks, *self._fetches.values()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.close()

    async def _first_sync(self) -> None:
        self._tasks = [asyncio.create_task(r.run(), name=repr(r)) for r in self.reflectors]
        synced: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(r.synced.wait() for r in self.reflectors)))
        watched: list[asyncio.Future[Any]] = [synced, *self._tasks]
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if synced not in done:  # a reflector died of a bug: surface it, do not hang
            synced.cancel()
            for task in done:
                task.result()
        async with self._lock:
            self._synced = True
            self._reconcile()
        log.info("first full sync done: %d endpoints", len(self._applied))

    async def watch(self) -> None:
        """Keep applying changes until cancelled; then stop every watch."""
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.close()

    def staleness(self) -> float:
        """Seconds since the least recently heard-from watch last reached the API server."""
        contacts = [r.last_contact for r in self.reflectors]
        if not all(contacts):
            return 0.0
        return max(0.0, time.monotonic() - min(contacts))

    async def recheck(self) -> None:
        """Check every refused ConfigMap again (called when the signing keys changed)."""
        async with self._lock:
            self._refused = {k: v for k, v in self._refused.items() if k.startswith("forged:")}
            if self._synced:
                self._reconcile()

    # Reflector callbacks.

    def _table(self, kind: str) -> dict[Key, Any]:
        tables: dict[str, dict[Key, Any]] = {
            "endpoints": self._endpoints,
            "configmaps": self._configmaps,
        }
        return tables[kind]

    @staticmethod
    def _value(kind: str, obj: Obj) -> Any:
        if kind == "endpoints":
            return str(obj.get("metadata", {}).get("uid", ""))
        # Held until the next change: without the server's field-ownership bookkeeping,
        # which nothing here reads (a few KiB of small dicts each, at 10,000 ConfigMaps).
        meta = obj.get("metadata")
        if isinstance(meta, dict) and "managedFields" in meta:
            return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
        return obj

    @staticmethod
    def _claims_ours(kind: str, obj: Obj) -> bool:
        # The selector is sent with every LIST and WATCH; this second look keeps a foreign
        # ConfigMap out even if a proxy or a fake API server dropped it.
        if kind != "configmaps":
            return True
        labels = obj.get("metadata", {}).get("labels") or {}
        return bool(labels.get(contract.MANAGED_BY_LABEL) == contract.MANAGER)

    def _replacer(self, kind: str, ns: str) -> Callable[[list[Obj]], Any]:
        async def replace(items: list[Obj]) -> None:
            async with self._lock:
                if kind == "secrets":
                    self._credential_cache.replace(ns, items)
                else:
                    table = self._table(kind)
                    for key in [k for k in table if not ns or k[0] == ns]:
                        del table[key]
                    for obj in items:
                        if self._claims_ours(kind, obj):
                            table[_key(obj)] = self._value(kind, obj)
                if self._synced:
                    self._reconcile()

        return replace

    def _eventer(self, kind: str) -> Callable[[str, Obj], Any]:
        async def event(kind_of_event: str, obj: Obj) -> None:
            async with self._lock:
                if kind == "secrets":
                    if kind_of_event == "DELETED":
                        self._credential_cache.forget(credential_cache.secret_key(obj))
                    else:
                        self._credential_cache.take(obj)
                    if self._synced:
                        self._refresh_secrets()
                    return
                table = self._table(kind)
                if kind_of_event == "DELETED" or not self._claims_ours(kind, obj):
                    table.pop(_key(obj), None)
                else:
                    table[_key(obj)] = self._value(kind, obj)
                if self._synced:
                    # One object changed: only the ConfigMap it names can change what is
                    # served (a full pass per event is quadratic in a bulk apply).
                    ns, name = _key(obj)
                    self._reconcile_one(
                        ns, name if kind == "configmaps" else contract.configmap_name(name))

        return event

    # Reconciliation: cached state -> store and credentials.

    def _reconcile(self) -> None:
        desired: dict[str, Obj] = {}
        for (ns, cm_name), cm in self._configmaps.items():
            owner = self._accepted_owner(ns, cm_name, cm)
            if owner is not None:
                desired[f"{ns}/{owner}"] = cm
        for key in [k for k in self._applied if k not in desired]:
            self._withdraw(key)
        for key, cm in desired.items():
            self._apply(key, cm)
            self._track(key)
        self._refresh_secrets()

    def _reconcile_one(self, ns: str, cm_name: str) -> None:
        """`_reconcile` for the one ConfigMap key an event touched.

        An accepted ConfigMap is named after its owner (`gwe-<owner>`), so the endpoint it
        may serve follows from its name alone.
        """
        cm = self._configmaps.get((ns, cm_name))
        owner = self._accepted_owner(ns, cm_name, cm) if cm is not None else None
        if cm is not None and owner is not None:
            key = f"{ns}/{owner}"
            self._apply(key, cm)
        elif cm_name.startswith(contract.CONFIGMAP_PREFIX):
            key = f"{ns}/{cm_name.removeprefix(contract.CONFIGMAP_PREFIX)}"
            if key not in self._applied:
                return
            self._withdraw(key)
        else:
            return
        if self._track(key):
            self._refresh_secrets()

    def _withdraw(self, key: str) -> None:
        del self._applied[key]
        self._store.remove(key, SOURCE)
        self._track(key)

    def _track(self, key: str) -> bool:
        """Record the Secret keys endpoint `key` serves with now; True when the set of
        referenced keys changed (the credential cache must then be told)."""
        endpoint = self._store.snapshot().get(key)
        refs: frozenset[credential_cache.Ref] = frozenset()
        if endpoint is not None:
            refs = frozenset(
                (endpoint.namespace, t.api_key_ref.secret_key_ref.name,
                 t.api_key_ref.secret_key_ref.key)
                for t in (*endpoint.split, *endpoint.fallbacks)
                if t.api_key_ref is not None and t.api_key_ref.secret_key_ref is not None)
        old = self._refs.pop(key, frozenset())
        if refs:
            self._refs[key] = refs
        if refs == old:
            return False
        moved = False
        for ref in old - refs:
            self._wanted[ref] -= 1
            if self._wanted[ref] <= 0:
                del self._wanted[ref]
                moved = True
        for ref in refs - old:
            moved = moved or ref not in self._wanted
            self._wanted[ref] += 1
        return moved

    def _accepted_owner(self, ns: str, cm_name: str, cm: Obj) -> str | None:
        """The owning endpoint's name when the ConfigMap may be served, else None.

        Counted as `forged` only when it claims to be ours (the managed-by label, which
        every ConfigMap here carries) yet names no GatewayEndpoint controller, a controller
        of another UID than the live one, or a name other than `gwe-<owner>`. An orphan
        (its owner is not live: deleted, or its ADDED event not seen yet) is the normal
        moment between a deletion and garbage collection, and is skipped uncounted.
        """
        ref = _controller(cm)
        owner = str(ref.get("name")) if ref else ""
        live_uid = self._endpoints.get((ns, owner)) if ref else None
        if ref is not None and live_uid is None and cm_name == contract.configmap_name(owner):
            return None
        if ref is None or live_uid != ref.get("uid") or cm_name != contract.configmap_name(owner):
            version = str(cm.get("metadata", {}).get("resourceVersion", ""))
            if self._refused.get(f"forged:{ns}/{cm_name}") != version:
                self._refused[f"forged:{ns}/{cm_name}"] = version
                log.warning(
                    "ignoring ConfigMap %s/%s: no controller ownerReference to a live "
                    "GatewayEndpoint of that UID and name",
                    ns,
                    cm_name,
                )
                self._hooks.refused(FORGED)
            return None
        return owner

    def _apply(self, key: str, cm: Obj) -> None:
        meta = cm.get("metadata", {})
        version = str(meta.get("resourceVersion", ""))
        if self._applied.get(key) == version or self._refused.get(key) == version:
            return
        try:
            config = load_config(str((cm.get("data") or {}).get(contract.DATA_KEY, "")))
            self._check_identity(key, config)
            if self._trust is not None:
                self._trust.check(cm, config)
        except InvalidEndpoint as exc:
            self._refused[key] = version
            self._hooks.refused(exc.reason if isinstance(exc, trusted.Untrusted) else INVALID)
            self._store.reject(key, str(exc), SOURCE)
            self._post_event(cm, str(exc))
            return
        self._refused.pop(key, None)
        self._applied[key] = version
        change = self._store.apply(config, SOURCE)
        annotations = meta.get("annotations") or {}
        rendered = _parse_time(str(annotations.get(contract.RENDERED_AT_ANNOTATION, "")))
        if change.kind == ChangeKind.APPLIED and rendered is not None:
            self._hooks.propagation(max(0.0, time.time() - rendered))

    @staticmethod
    def _check_identity(key: str, config: EndpointConfig) -> None:
        if config.key != key:
            raise InvalidEndpoint([Problem("endpoint.json", f"names {config.key}, owner is {key}")])

    # Credentials: only the Secret keys a served endpoint references.

    def _refresh_secrets(self) -> None:
        wanted = set(self._wanted)
        for secret in self._credential_cache.want(wanted):
            if secret not in self._fetches:
                task = asyncio.get_running_loop().create_task(self._fetch_secret(secret))
                self._fetches[secret] = task
                task.add_done_callback(functools.partial(self._fetched, secret))
        self._credentials.replace_secrets(self._credential_cache.table())

    def _fetched(self, secret: credential_cache.SecretKey, task: asyncio.Task[None]) -> None:
        if self._fetches.get(secret) is task:
            del self._fetches[secret]

    async def _fetch_secret(self, secret: credential_cache.SecretKey) -> None:
        """GET one Secret whose newly referenced key was dropped at intake (bounded retries)."""
        ns, name = secret
        path = paths.object_path("v1", "secrets", name, namespace=ns)
        for attempt in range(_FETCH_ATTEMPTS):
            try:
                obj = await self._client.request("GET", path)
            except NotFound:
                return  # the watch brings the deletion
            except ApiError as exc:
                log.warning("could not get Secret %s/%s: %s", ns, name, exc)
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            async with self._lock:
                if not is_credential((obj.get("metadata") or {}).get("labels")):
                    log.warning("Secret %s/%s lost the label %s; not used",
                                ns, name, contract.CREDENTIAL_SELECTOR)
                    self._credential_cache.forget(secret)
                else:
                    self._credential_cache.take_fetched(obj)
                self._credentials.replace_secrets(self._credential_cache.table())
            return

    def _post_event(self, cm: Obj, message: str) -> None:
        """Best effort: an Event on the refused ConfigMap, if RBAC lets us."""
        task = asyncio.get_running_loop().create_task(self._send_event(cm, message))
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    async def _send_event(self, cm: Obj, message: str) -> None:
        meta = cm.get("metadata", {})
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta.get('name')}.",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": "ConfigRejected",
            "type": "Warning",
            "message": message[:1000],
            "source": {"component": "switchyard-gateway"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            path = paths.collection_path("v1", "events", namespace=str(meta.get("namespace")))
            await self._client.request("POST", path, body=event)
        except (ApiError, paths.InvalidPathSegment) as exc:
            log.debug("could not post Event for %s: %s", meta.get("name"), exc)
