"""In-cluster config source: the operator's ConfigMaps and labelled Secrets, watched live.

Fills the `ConfigStore` and the `Credentials` table from three list-then-watches per
watched namespace (or one each, cluster-wide): GatewayEndpoints (only to know which UIDs
are live), ConfigMaps labelled `app.kubernetes.io/managed-by=switchyard-operator`, and
Secrets labelled `switchyard.dev/credential=true`. A ConfigMap is accepted only when its
controller ownerReference names a live GatewayEndpoint with that UID, its name and payload
agree with that owner, its payload fully validates (`load_config`), and `trust.py` finds
it signed by the operator and within the platform policy: a forged label cannot bypass
admission, a tenant's edit cannot pass for the operator's, and a refused payload leaves the
last good config live. Only the Secret
values some endpoint references are kept in memory. Writes nothing but Events.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from switchyard_gateway.config import trust as trusted
from switchyard_gateway.config.store import ChangeKind, ConfigStore
from switchyard_gateway.credentials import ApiKey
from switchyard_gateway.secrets import Credentials
from switchyard_kube.client import ApiError, Client
from switchyard_kube.reflector import Obj, Reflector
from switchyard_schema import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    EndpointConfig,
    InvalidEndpoint,
    Problem,
    load_config,
)

log = logging.getLogger(__name__)

MANAGED_BY = "app.kubernetes.io/managed-by=switchyard-operator"
CREDENTIAL = "switchyard.dev/credential=true"
DATA_KEY = "endpoint.json"
RENDERED_AT = "switchyard.dev/rendered-at"
SOURCE = "configmap"

Key = tuple[str, str]  # (namespace, name)


@dataclasses.dataclass
class ClusterHooks:
    """Callbacks for metrics; all optional."""

    propagation: Callable[[float], None] = lambda seconds: None
    refused: Callable[[str], None] = lambda reason: None  # reason: one of trust.REASONS


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
        self._secrets: dict[Key, dict[str, str]] = {}
        self._applied: dict[str, str] = {}  # endpoint key -> resourceVersion applied
        self._refused: dict[str, str] = {}  # endpoint key/cm -> resourceVersion refused
        self._lock = asyncio.Lock()
        self._event_tasks: set[asyncio.Task[None]] = set()  # referenced until done
        self._tasks: list[asyncio.Task[None]] = []
        self._synced = False
        self.reflectors: list[Reflector] = []
        for ns in self._namespaces:
            self.reflectors += self._reflectors_for(ns)

    def _reflectors_for(self, ns: str) -> list[Reflector]:
        scope = f"/namespaces/{ns}" if ns else ""
        kinds: list[tuple[str, str, str]] = [
            ("endpoints", f"/apis/{API_VERSION}{scope}/{PLURAL}", ""),
            ("configmaps", f"/api/v1{scope}/configmaps", MANAGED_BY),
            ("secrets", f"/api/v1{scope}/secrets", CREDENTIAL),
        ]
        return [
            Reflector(
                self._client,
                path,
                label_selector=selector,
                on_replace=self._replacer(kind, ns),
                on_event=self._eventer(kind),
            )
            for kind, path, selector in kinds
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
        pending = [*self._tasks, *self._event_tasks]
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
            "secrets": self._secrets,
        }
        return tables[kind]

    @staticmethod
    def _value(kind: str, obj: Obj) -> Any:
        if kind == "endpoints":
            return str(obj.get("metadata", {}).get("uid", ""))
        if kind == "secrets":
            return dict(obj.get("data") or {})
        return obj

    def _replacer(self, kind: str, ns: str) -> Callable[[list[Obj]], Any]:
        async def replace(items: list[Obj]) -> None:
            async with self._lock:
                table = self._table(kind)
                for key in [k for k in table if not ns or k[0] == ns]:
                    del table[key]
                for obj in items:
                    table[_key(obj)] = self._value(kind, obj)
                if self._synced:
                    self._reconcile()

        return replace

    def _eventer(self, kind: str) -> Callable[[str, Obj], Any]:
        async def event(kind_of_event: str, obj: Obj) -> None:
            async with self._lock:
                table = self._table(kind)
                if kind_of_event == "DELETED":
                    table.pop(_key(obj), None)
                else:
                    table[_key(obj)] = self._value(kind, obj)
                if self._synced:
                    self._reconcile()

        return event

    # Reconciliation: cached state -> store and credentials.

    def _reconcile(self) -> None:
        desired: dict[str, Obj] = {}
        for (ns, cm_name), cm in self._configmaps.items():
            owner = self._accepted_owner(ns, cm_name, cm)
            if owner is not None:
                desired[f"{ns}/{owner}"] = cm
        for key in [k for k in self._applied if k not in desired]:
            del self._applied[key]
            self._store.remove(key, SOURCE)
        for key, cm in desired.items():
            self._apply(key, cm)
        self._refresh_secrets()

    def _accepted_owner(self, ns: str, cm_name: str, cm: Obj) -> str | None:
        ref = _controller(cm)
        version = str(cm.get("metadata", {}).get("resourceVersion", ""))
        live_uid = self._endpoints.get((ns, str(ref.get("name")))) if ref else None
        if ref is None or live_uid != ref.get("uid") or cm_name != f"gwe-{ref.get('name')}":
            if self._refused.get(f"forged:{ns}/{cm_name}") != version:
                self._refused[f"forged:{ns}/{cm_name}"] = version
                log.warning(
                    "ignoring ConfigMap %s/%s: no controller ownerReference to a live "
                    "GatewayEndpoint of that UID",
                    ns,
                    cm_name,
                )
                self._hooks.refused("forged")
            return None
        return str(ref["name"])

    def _apply(self, key: str, cm: Obj) -> None:
        meta = cm.get("metadata", {})
        version = str(meta.get("resourceVersion", ""))
        if self._applied.get(key) == version or self._refused.get(key) == version:
            return
        try:
            config = load_config(str((cm.get("data") or {}).get(DATA_KEY, "")))
            self._check_identity(key, config)
            if self._trust is not None:
                self._trust.check(cm, config)
        except InvalidEndpoint as exc:
            self._refused[key] = version
            self._hooks.refused(exc.reason if isinstance(exc, trusted.Untrusted) else "invalid")
            self._store.reject(key, str(exc), SOURCE)
            self._post_event(cm, str(exc))
            return
        self._refused.pop(key, None)
        self._applied[key] = version
        change = self._store.apply(config, SOURCE)
        rendered = _parse_time(str((meta.get("annotations") or {}).get(RENDERED_AT, "")))
        if change.kind == ChangeKind.APPLIED and rendered is not None:
            self._hooks.propagation(max(0.0, time.time() - rendered))

    @staticmethod
    def _check_identity(key: str, config: EndpointConfig) -> None:
        if config.key != key:
            raise InvalidEndpoint([Problem("endpoint.json", f"names {config.key}, owner is {key}")])

    def _refresh_secrets(self) -> None:
        wanted: set[tuple[str, str, str]] = set()
        for endpoint in self._store.snapshot().values():
            for target in (*endpoint.split, *endpoint.fallbacks):
                ref = target.api_key_ref
                if ref is not None and ref.secret_key_ref is not None:
                    wanted.add(
                        (endpoint.namespace, ref.secret_key_ref.name, ref.secret_key_ref.key)
                    )
        table: dict[tuple[str, str, str], ApiKey] = {}
        for ns, name, key in wanted:
            raw = self._secrets.get((ns, name), {}).get(key)
            if raw is None:
                continue
            try:
                table[(ns, name, key)] = ApiKey(base64.b64decode(raw).decode("utf-8").strip())
            except (binascii.Error, UnicodeDecodeError):
                log.warning("Secret %s/%s key %r is not valid base64 UTF-8", ns, name, key)
        self._credentials.replace_secrets(table)

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
            await self._client.request(
                "POST", f"/api/v1/namespaces/{meta.get('namespace')}/events", body=event
            )
        except ApiError as exc:
            log.debug("could not post Event for %s: %s", meta.get("name"), exc)
