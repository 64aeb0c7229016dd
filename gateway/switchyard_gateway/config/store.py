"""The last good config of every endpoint, swapped atomically.

Sources (the standalone file watcher, the in-cluster ConfigMap watcher) call `apply`,
`remove` and `reject`; the HTTP layer calls `resolve` once per request and keeps the
`CompiledEndpoint` it got for the request's whole life. Every change builds a new dict
and assigns it as one reference, so readers never see a half-applied config and need no
lock. Listeners (metrics, a UI) are told of every change; a listener must not raise.

The store does no I/O and knows nothing of files or Kubernetes.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType

from switchyard_gateway.config.compiled import CompiledEndpoint, compile_endpoint
from switchyard_schema import EndpointConfig

log = logging.getLogger(__name__)


class ChangeKind(enum.StrEnum):
    """What happened to an endpoint's config."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    REJECTED = "rejected"


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigChange:
    """One event for listeners: `key` is `namespace/name`."""

    kind: ChangeKind
    key: str
    source: str
    spec_hash: str = ""
    reason: str = ""


Listener = Callable[[ConfigChange], None]


class ConfigStore:
    """Endpoints by `namespace/name`; resolution of a request's `model` field."""

    def __init__(self, default_namespace: str = "default") -> None:
        self.default_namespace = default_namespace
        self._endpoints: Mapping[str, CompiledEndpoint] = MappingProxyType({})
        self._rejected: Mapping[str, str] = MappingProxyType({})
        self._listeners: list[Listener] = []
        self._synced = False

    # Reading (hot path).

    def snapshot(self) -> Mapping[str, CompiledEndpoint]:
        """The current endpoints; an immutable view that later changes do not touch."""
        return self._endpoints

    def resolve(self, model: str) -> CompiledEndpoint | None:
        """The endpoint a `model` value names, or None.

        `namespace/name` always; a bare `name` only in the default namespace (never a
        search of other namespaces, so a tenant cannot shadow another's endpoint).
        """
        key = model if "/" in model else f"{self.default_namespace}/{model}"
        return self._endpoints.get(key)

    @property
    def synced(self) -> bool:
        """True once a source has completed its first full sync (`/readyz`)."""
        return self._synced

    def rejected(self) -> Mapping[str, str]:
        """Endpoints whose latest config was refused, with the reason (last good stays)."""
        return self._rejected

    # Writing (sources).

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` on every change from now on."""
        self._listeners.append(listener)

    def mark_synced(self) -> None:
        """Record that the first full sync is done."""
        self._synced = True

    def apply(self, config: EndpointConfig, source: str = "") -> ConfigChange:
        """Compile and install `config` as its endpoint's new last good config.

        An identical hash is a no-op (reported as UNCHANGED). Compilation happens before
        the swap, so a failure leaves the previous config live.
        """
        key = config.key
        current = self._endpoints.get(key)
        if current is not None and current.spec_hash == config.spec_hash \
                and current.generation == config.generation:
            self._clear_rejection(key)
            return self._emit(ConfigChange(ChangeKind.UNCHANGED, key, source, config.spec_hash))
        compiled = compile_endpoint(config)
        self._endpoints = MappingProxyType({**self._endpoints, key: compiled})
        self._clear_rejection(key)
        log.info("endpoint %s: config applied (%s)", key, config.spec_hash)
        return self._emit(ConfigChange(ChangeKind.APPLIED, key, source, config.spec_hash))

    def remove(self, key: str, source: str = "") -> ConfigChange | None:
        """Stop serving an endpoint (its resource was deleted). None if it was unknown."""
        if key not in self._endpoints and key not in self._rejected:
            return None
        self._endpoints = MappingProxyType({k: v for k, v in self._endpoints.items() if k != key})
        self._clear_rejection(key)
        log.info("endpoint %s: removed", key)
        return self._emit(ConfigChange(ChangeKind.REMOVED, key, source))

    def reject(self, key: str, reason: str, source: str = "") -> ConfigChange:
        """Record a refused config; the endpoint's last good config (if any) stays live."""
        self._rejected = MappingProxyType({**self._rejected, key: reason})
        kept = "kept last good config" if key in self._endpoints else "no config live"
        log.warning("endpoint %s: config rejected (%s): %s", key, kept, reason)
        return self._emit(ConfigChange(ChangeKind.REJECTED, key, source, reason=reason))

    def _clear_rejection(self, key: str) -> None:
        if key in self._rejected:
            self._rejected = MappingProxyType(
                {k: v for k, v in self._rejected.items() if k != key})

    def _emit(self, change: ConfigChange) -> ConfigChange:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:  # a broken listener must not stop a config change
                log.exception("config listener failed")
        return change
