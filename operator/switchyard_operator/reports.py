"""The gateway replicas' status reports, watched, and the loop that keeps `Ready` honest.

Started by `switchyard operator --gateway-reports-namespace NS` (`switchyard_cli`), next to
Kopf, not inside it: Kopf watches one label selection of ConfigMaps (the rendered ones),
and the reports are another. `Reports` mirrors the report ConfigMaps of that namespace
(label `switchyard.dev/gateway-report=true`, sent to the API server);
`served_status.keep_served` re-assesses the rendered endpoints against them twice a second
and writes status only for endpoints whose served state changed (a report arrived, a
replica's heartbeat expired). A report that does not parse is skipped and logged, never fatal.
"""

from __future__ import annotations

import logging
from typing import Any

from switchyard_kube import paths
from switchyard_kube.client import Client
from switchyard_kube.reflector import Obj, Reflector
from switchyard_schema import report as shape

log = logging.getLogger(__name__)


class Reports:
    """Every replica's latest report, by ConfigMap name."""

    def __init__(self, client: Client, namespace: str) -> None:
        self._reports: dict[str, shape.Report] = {}
        #: Bumped on every change, so a reader can tell the reports are as it last saw them.
        self.version = 0
        self.reflector = Reflector(
            client, paths.collection_path("v1", "configmaps", namespace=namespace),
            label_selector=shape.REPORT_SELECTOR, on_replace=self._replace,
            on_event=self._event)

    def all(self) -> list[shape.Report]:
        """The reports held now (live or not: `served.assess` decides)."""
        return list(self._reports.values())

    def _take(self, obj: Obj) -> None:
        self.version += 1
        name = str(obj.get("metadata", {}).get("name", ""))
        data: Any = obj.get("data") or {}
        try:
            self._reports[name] = shape.decode(str(data.get(shape.DATA_KEY, "")))
        except shape.InvalidReport as exc:
            self._reports.pop(name, None)
            log.warning("ignoring gateway report %s: %s", name, exc)

    async def _replace(self, items: list[Obj]) -> None:
        self.version += 1
        self._reports.clear()
        for obj in items:
            self._take(obj)

    async def _event(self, kind: str, obj: Obj) -> None:
        if kind == "DELETED":
            self.version += 1
            self._reports.pop(str(obj.get("metadata", {}).get("name", "")), None)
        else:
            self._take(obj)
