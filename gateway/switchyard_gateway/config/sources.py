"""Config sources: what fills the store. Standalone mode's file source lives here.

A source has two coroutines: `sync()` does the first full load (the app awaits it before
`/readyz` turns ready) and `watch()` applies changes until cancelled. The in-cluster
ConfigMap/Secret watcher (`config/cluster.py`) implements the same `Source` protocol against
the same `ConfigStore` and `Credentials` API.

`FileSource` reads GatewayEndpoint manifests from a file or a folder (multi-document YAML,
`.yaml`/`.yml`/`.json`; a manifest without a namespace is in the default namespace), and
v1 Secret manifests in the same files for `secretKeyRef` values. It polls about once a
second: a change of any file's mtime or size triggers a read, and a change of the content
hash triggers a parse (both in a worker thread: disk and YAML are off the event loop).
Each endpoint applies on its own: an invalid manifest, or a file that no longer parses, is
refused with a log line and a `rejected` change, and that endpoint's last good config
stays live. An endpoint whose manifest was removed is removed. An endpoint outside the
platform policy given by flag (`--allowed-base-url-hosts`, `--allowed-env-keys`) is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import pathlib
from collections.abc import Mapping
from typing import Any, Protocol

import yaml

from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.config import trust
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.credentials import Credentials, secret_entries
from switchyard_schema import (
    EndpointConfig,
    InvalidEndpoint,
    is_ours,
    manifests,
    normalize,
    parse_endpoint,
)
from switchyard_schema.policy import PlatformPolicy, describe

log = logging.getLogger(__name__)

SUFFIXES = frozenset({".yaml", ".yml", ".json"})


class Source(Protocol):
    """Something that fills the config store."""

    #: False: the app awaits `sync` before it listens (local files: fast, and a request
    #: right after start must not 404). True: the port opens first and `/readyz` waits for
    #: the sync (an API server may be slow or down; liveness must still answer).
    sync_in_background: bool

    async def sync(self) -> None:
        """Load everything once; return when the store holds the first full config."""
        ...

    async def watch(self) -> None:
        """Apply changes until cancelled."""
        ...


@dataclasses.dataclass(slots=True)
class Snapshot:
    """One parse of every file."""

    configs: dict[str, EndpointConfig] = dataclasses.field(default_factory=dict)
    rejected: dict[str, str] = dataclasses.field(default_factory=dict)
    secrets: dict[tuple[str, str, str], ApiKey] = dataclasses.field(default_factory=dict)
    #: endpoint keys per file, for files that parsed; a broken file keeps its old keys
    keys_by_file: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    broken_files: dict[str, str] = dataclasses.field(default_factory=dict)


def manifest_files(path: pathlib.Path) -> list[pathlib.Path]:
    """The manifest files under `path` (itself, if a file), sorted for a stable order."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())


def _key_of(doc: Mapping[str, Any], default_namespace: str) -> str | None:
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return None
    return f"{meta.get('namespace') or default_namespace}/{meta['name']}"


def parse_files(files: Mapping[str, bytes], default_namespace: str) -> Snapshot:
    """Parse and validate every document of every file (pure; no I/O)."""
    snap = Snapshot()
    for name, raw in files.items():
        try:
            docs = [d for d in manifests.load_all(raw) if d is not None]
        except yaml.YAMLError as exc:
            snap.broken_files[name] = f"{name}: not valid YAML/JSON: {exc}"
            continue
        keys = snap.keys_by_file.setdefault(name, set())
        for doc in docs:
            _parse_doc(doc, name, default_namespace, snap, keys)
    return snap


def _parse_doc(doc: Any, file: str, default_namespace: str, snap: Snapshot,
               keys: set[str]) -> None:
    if not isinstance(doc, dict):
        return
    if doc.get("kind") == "Secret" and doc.get("apiVersion") == "v1":
        snap.secrets.update(secret_entries(doc, default_namespace))
        return
    if not is_ours(doc):
        return
    key = _key_of(doc, default_namespace)
    if key is None:
        snap.broken_files.setdefault(file, f"{file}: a manifest has no metadata.name")
        return
    keys.add(key)
    if key in snap.configs or key in snap.rejected:
        snap.rejected[key] = f"{file}: endpoint {key} is defined more than once"
        snap.configs.pop(key, None)
        return
    try:
        snap.configs[key] = normalize(parse_endpoint(doc, default_namespace))
    except InvalidEndpoint as exc:
        snap.rejected[key] = f"{file}: {exc}"


class FileSource:
    """Standalone mode: GatewayEndpoint (and Secret) manifests on disk, polled."""

    sync_in_background = False

    def __init__(self, path: str | pathlib.Path, store: ConfigStore, credentials: Credentials,
                 interval: float = 1.0, policy: PlatformPolicy | None = None) -> None:
        self.path = pathlib.Path(path)
        self._policy = policy  # the admin's allow-lists, if given (files need no signature)
        self._store = store
        self._credentials = credentials
        self._interval = interval
        self._stat: tuple[tuple[str, int, int], ...] | None = None
        self._digest = ""
        self._keys_by_file: dict[str, set[str]] = {}

    async def sync(self) -> None:
        """First load. Raises FileNotFoundError if the path does not exist."""
        if not self.path.exists():
            raise FileNotFoundError(f"config path {self.path} does not exist")
        await self.poll()

    async def watch(self) -> None:
        """Poll for changes every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll()
            except OSError as exc:  # a folder being rewritten; try again next tick
                log.warning("cannot read config path %s: %s", self.path, exc)

    async def poll(self) -> bool:
        """Apply the files if they changed; True when a parse happened."""
        snap = await asyncio.to_thread(self._read_if_changed)
        if snap is None:
            return False
        self._apply(snap)
        return True

    def _stats(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        for p in manifest_files(self.path):
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _read_if_changed(self) -> Snapshot | None:
        """Worker thread: stat, then read and hash, then parse, stopping when unchanged."""
        stat = self._stats()
        if stat == self._stat:
            return None
        files = {name: pathlib.Path(name).read_bytes() for name, _, _ in stat}
        digest = hashlib.sha256()
        for name, raw in files.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(raw).digest())
        self._stat = stat
        if digest.hexdigest() == self._digest:
            return None
        self._digest = digest.hexdigest()
        return parse_files(files, self._store.default_namespace)

    def _apply(self, snap: Snapshot) -> None:
        """Event loop: secrets first (so keys resolve), then each endpoint on its own."""
        self._credentials.replace_secrets(snap.secrets)
        kept_by_broken = {name: self._keys_by_file.get(name, set()) for name in snap.broken_files}
        for name, reason in snap.broken_files.items():
            log.warning("config file refused: %s", reason)
            for key in kept_by_broken[name]:
                self._store.reject(key, reason, source=str(self.path))
        for config in snap.configs.values():
            problems = [] if self._policy is None else trust.policy_problems(config, self._policy)
            if problems:
                self._store.reject(config.key, describe(problems), source=str(self.path))
                continue
            self._store.apply(config, source=str(self.path))
        for key, reason in snap.rejected.items():
            self._store.reject(key, reason, source=str(self.path))
        present = _union(*snap.keys_by_file.values(), *kept_by_broken.values())
        for key in _union(*self._keys_by_file.values()) - present:
            self._store.remove(key, source=str(self.path))
        self._keys_by_file = {**snap.keys_by_file, **kept_by_broken}


def _union(*sets: set[str]) -> set[str]:
    out: set[str] = set()
    out.update(*sets)
    return out
