"""Watch the other gateway replicas' status reports and share their cooldowns (issue 18).

Created by `serve.build_app` in cluster mode next to the reporter (`report.py`), as a
`cleanup_ctx` entry. It mirrors the report ConfigMaps of the gateway's own namespace (label
selector `REPORT_SELECTOR`, sent to the API server) and, on every report event and every
report interval, applies `routing.sharing.plan` to the local `Cooldowns`: a target that
cools down on another replica cools down here within about a second, and only the leading
replica probes it per window (the rules, and why, are in `sharing.py`).

Closing an adopted breaker: when no live replica reports the target cooling any more while
the replica this one followed is still live, that replica's probe succeeded, and the
breaker closes here too. When the followed replica dies (its report deleted with its Pod,
or its heartbeat gone stale), nothing is known: the adopted window runs to its end, and
then this replica probes for itself (one request; a failure opens its own window, which
it reports and the others adopt).

Must not: trust reports from another namespace (only the gateway's own is watched),
fail on a report it cannot read (skipped, logged, counted in `invalid`), touch the request
path (adoption happens here, on events and ticks; a request still does one dict lookup),
or report an adopted cooldown as its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.routing import sharing
from switchyard_gateway.routing.cooldown import BreakerKey, Cooldowns
from switchyard_kube import paths
from switchyard_kube.client import Client
from switchyard_kube.reflector import Obj, Reflector
from switchyard_schema import report as shape

log = logging.getLogger(__name__)


class Peers:
    """The other replicas' reports, and the cooldowns adopted from them."""

    def __init__(self, client: Client, namespace: str, replica: str, cooldowns: Cooldowns,
                 endpoints: Callable[[], Mapping[str, CompiledEndpoint]], interval: float,
                 clock: Callable[[], float] = time.time,
                 on_adopt: Callable[[], None] = lambda: None) -> None:
        self._replica = replica
        self._cooldowns = cooldowns
        self._endpoints = endpoints
        self._interval = interval
        self._grace = sharing.grace_for(interval)
        self._clock = clock
        self._on_adopt = on_adopt  # a metric: one adopted window
        self._reports: dict[str, shape.Report] = {}  # by ConfigMap name
        self._following: dict[BreakerKey, str] = {}  # adopted breaker -> its leader
        self.invalid = 0  # reports skipped because they did not parse
        self.reflector = Reflector(
            client, paths.collection_path("v1", "configmaps", namespace=namespace),
            label_selector=shape.REPORT_SELECTOR, on_replace=self._replace,
            on_event=self._event)

    def apply(self) -> None:
        """Adopt the leading peers' windows, and close the adopted ones whose leader has
        reported the target healthy again (see the module docstring)."""
        now = self._clock()
        plan = sharing.plan(self._replica, self._reports.values(), self._cooldowns.cooling(),
                            self._endpoints(), now, self._grace)
        for key, adoption in plan.adopt.items():
            if self._cooldowns.adopt(key, adoption.since, adoption.until,
                                     adoption.rate_limited):
                self._on_adopt()
                log.info("cooldown of %s adopted from replica %s", key[0], adoption.leader)
            self._following[key] = adoption.leader
        adopted = self._cooldowns.adopted()
        for key in adopted - plan.adopt.keys():
            if key not in plan.reported and self._following.get(key) in plan.live:
                self._cooldowns.forget(key)
        for key in [k for k in self._following if k not in adopted]:
            del self._following[key]

    async def run(self) -> None:
        """Watch the reports and re-apply every interval (heartbeats expire without an
        event) until cancelled."""
        watch = asyncio.create_task(self.reflector.run(), name="peer-reports")
        try:
            while True:
                await asyncio.sleep(self._interval)
                self.apply()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    def _take(self, obj: Obj) -> None:
        name = str(obj.get("metadata", {}).get("name", ""))
        if name == shape.report_name(self._replica):
            return
        data: Any = obj.get("data") or {}
        try:
            report = shape.decode(str(data.get(shape.DATA_KEY, "")))
        except shape.InvalidReport as exc:
            self._skip(name, str(exc))
            return
        if shape.report_name(report.replica) != name:
            self._skip(name, "its replica does not match its name")
            return
        self._reports[name] = report

    def _skip(self, name: str, why: str) -> None:
        self._reports.pop(name, None)
        self.invalid += 1
        log.warning("ignoring peer report %s: %s", name, why)

    async def _replace(self, items: list[Obj]) -> None:
        self._reports.clear()
        for obj in items:
            self._take(obj)
        self.apply()

    async def _event(self, kind: str, obj: Obj) -> None:
        if kind == "DELETED":
            self._reports.pop(str(obj.get("metadata", {}).get("name", "")), None)
        else:
            self._take(obj)
        self.apply()
