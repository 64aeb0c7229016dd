"""Publish what this gateway replica serves: one report ConfigMap, written in bounded batches.

Created by `serve.build_app` in cluster mode (a `cleanup_ctx` entry); the operator reads
the reports (`switchyard_schema.report` is the shape) to set `Ready` and `Degraded` on each
GatewayEndpoint. Every `interval` seconds the report is built from the config store and
the cooldowns; it is written only when it changed or when the heartbeat is due
(`heartbeat` seconds), so API writes are bounded by 1 / interval per replica and fall to
1 / heartbeat when nothing changes. The ConfigMap is owned by the replica's Pod (when its
UID is known) so Kubernetes deletes it with the Pod; a replica that stops without that
simply stops beating, and the operator stops counting it after `LIVE_INTERVALS` heartbeats.

Must not: write key material (targets appear by name, breakers by reason), block serving
(a failed write is logged, counted and retried at the next tick), or write more often than
`interval`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.routing.cooldown import BreakerKey, Cooling
from switchyard_kube import paths
from switchyard_kube.client import ApiError, Client, NotFound
from switchyard_schema import report as shape

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Owner:
    """The Pod the report goes with (downward API `metadata.name` and `metadata.uid`)."""

    name: str
    uid: str


@dataclasses.dataclass(frozen=True, slots=True)
class ReportSettings:
    """Where and how often to report."""

    namespace: str
    replica: str
    owner: Owner | None = None
    interval: float = 1.0  # the shortest gap between two writes
    heartbeat: float = 5.0  # the longest gap between two writes


def build(replica: str, endpoints: Mapping[str, CompiledEndpoint],
          cooling: Mapping[BreakerKey, Cooling], now: float, heartbeat: float) -> shape.Report:
    """The report of what is served now (pure). A breaker is shown under every name its
    target identity has in the endpoint (an A/B arm that is also a fallback)."""
    hashes = {key: shape.short_hash(ep.spec_hash) for key, ep in endpoints.items()}
    by_endpoint: dict[str, dict[str, shape.TargetCooling]] = {}
    for (key, identity), state in cooling.items():
        endpoint = endpoints.get(key)
        if endpoint is None:
            continue
        for target in (*endpoint.split, *endpoint.fallbacks):
            if target.identity == identity:
                # `until` as fixed when the breaker (re)opened, not recomputed per tick: the
                # other replicas time their adopted windows by it (`sharing.py`).
                by_endpoint.setdefault(key, {})[target.name] = shape.TargetCooling(
                    state.since, state.until, state.reason)
    return shape.Report(replica, now, heartbeat, hashes, by_endpoint)


@dataclasses.dataclass
class WriteCounts:
    """API writes made (for the bench and /metrics), and failures."""

    writes: int = 0
    failures: int = 0


class Reporter:
    """Keeps the replica's report ConfigMap current (see the module docstring)."""

    def __init__(self, client: Client, settings: ReportSettings,
                 endpoints: Callable[[], Mapping[str, CompiledEndpoint]],
                 cooling: Callable[[], Mapping[BreakerKey, Cooling]],
                 clock: Callable[[], float] = time.time,
                 on_write: Callable[[bool], None] = lambda ok: None) -> None:
        self._client = client
        self._on_write = on_write  # a metric: True for a write made, False for a failure
        self._settings = settings
        self._endpoints = endpoints
        self._cooling = cooling
        self._clock = clock
        self._written_body = ""  # the last report written, heartbeat left out
        self._written_at = -float("inf")
        self._seen: tuple[int, list[tuple[BreakerKey, float, float, str]]] | None = None
        self._seen_endpoints: Mapping[str, CompiledEndpoint] | None = None  # kept alive
        self.counts = WriteCounts()

    async def tick(self) -> bool:
        """Write the report if it changed or the heartbeat is due; True when written."""
        now = self._clock()
        endpoints, cooling = self._endpoints(), self._cooling()
        # The store swaps its snapshot on every change, so an identical object is an
        # unchanged config: skip the rebuild (24 ms at 10,000 endpoints) until the heartbeat.
        seen = (id(endpoints), sorted((k, c.since, c.until, c.reason)
                                      for k, c in cooling.items()))
        due = now - self._written_at >= self._settings.heartbeat
        if seen == self._seen and endpoints is self._seen_endpoints and not due:
            return False
        report = build(self._settings.replica, endpoints, cooling, now,
                       self._settings.heartbeat)
        body = shape.encode(dataclasses.replace(report, heartbeat=0.0))
        if body == self._written_body and now - self._written_at < self._settings.heartbeat:
            return False
        try:
            await self._write(shape.encode(report))
        except ApiError as exc:
            self.counts.failures += 1
            self._on_write(False)
            log.warning("could not write the status report: %s", exc)
            return False
        self.counts.writes += 1
        self._on_write(True)
        self._written_body, self._written_at = body, now
        self._seen, self._seen_endpoints = seen, endpoints
        return True

    async def run(self) -> None:
        """Tick every `interval` until cancelled."""
        while True:
            await self.tick()
            await asyncio.sleep(self._settings.interval)

    def _object(self, text: str) -> dict[str, Any]:
        s = self._settings
        meta: dict[str, Any] = {
            "name": shape.report_name(s.replica),
            "namespace": s.namespace,
            "labels": {shape.REPORT_LABEL: shape.REPORT_VALUE},
        }
        if s.owner is not None:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod",
                                        "name": s.owner.name, "uid": s.owner.uid}]
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": {shape.DATA_KEY: text}}

    async def _write(self, text: str) -> None:
        """Replace the ConfigMap (unconditionally: only this replica writes it); create
        it when missing. One request in the usual case."""
        s = self._settings
        obj = self._object(text)
        name = shape.report_name(s.replica)
        try:
            await self._client.request(
                "PUT", paths.object_path("v1", "configmaps", name, namespace=s.namespace),
                body=obj)
        except NotFound:
            await self._client.request(
                "POST", paths.collection_path("v1", "configmaps", namespace=s.namespace),
                body=obj)
