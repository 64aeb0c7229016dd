"""List-then-watch of one resource collection, kept in sync for a handler.

Callers: the gateway's `config/cluster.py`. The Kubernetes protocol, done properly: a LIST
paged by `pager.list_all` (label selector and `limit` sent, a stale continue token
restarting it) gives the full state and a resourceVersion; a WATCH from that version
(same selector) streams changes (with bookmarks, so the version stays fresh while nothing
changes); a 410 Gone, or an ERROR event, means the version is too old and the reflector
lists again; a broken connection reconnects with capped exponential backoff and jitter.
The handler always sees full state on `replace` (after every list) and then single events,
so it never misses a deletion across a relist.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from switchyard_kube import pager
from switchyard_kube.client import ApiError, Client, Gone
from switchyard_kube.paths import ResourcePath

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Replace = Callable[[list[Obj]], Awaitable[None]]
Event = Callable[[str, Obj], Awaitable[None]]


class Reflector:
    """Keeps one collection (`path` + label selector) in sync through a handler."""

    def __init__(
        self,
        client: Client,
        path: ResourcePath,
        *,
        label_selector: str = "",
        on_replace: Replace,
        on_event: Event,
        watch_timeout: int = 290,
        page_size: int = pager.DEFAULT_PAGE_SIZE,
        max_backoff: float = 30.0,
    ) -> None:
        self._client = client
        self._path = path
        self._selector = label_selector
        self._on_replace = on_replace
        self._on_event = on_event
        self._watch_timeout = watch_timeout
        self._page_size = page_size
        self._max_backoff = max_backoff
        self.resource_version = ""
        self.synced = asyncio.Event()
        #: monotonic time of the last successful contact with the API server
        self.last_contact = 0.0
        self.relists = 0

    def __repr__(self) -> str:
        return f"Reflector({self._path}?labelSelector={self._selector})"

    async def run(self) -> None:
        """List and watch forever; cancelled to stop."""
        failures = 0
        while True:
            try:
                if not self.resource_version:
                    await self._list()
                await self._watch()
                failures = 0
            except Gone:
                log.info("%r: resourceVersion expired, relisting", self)
                self.resource_version = ""
            except ApiError as exc:
                failures += 1
                delay = min(self._max_backoff, 0.2 * 2 ** min(failures, 8))
                delay *= random.uniform(0.5, 1.0)  # jitter: replicas must not reconnect in step
                log.warning("%r: %s; retrying in %.1fs", self, exc, delay)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        listing = await pager.list_all(
            self._client, self._path, label_selector=self._selector, page_size=self._page_size
        )
        self.resource_version = listing.resource_version
        self.last_contact = time.monotonic()
        self.relists += 1
        await self._on_replace(listing.items)
        self.synced.set()

    async def _watch(self) -> None:
        params = {
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self._watch_timeout),
        }
        if self._selector:
            params["labelSelector"] = self._selector
        stream = self._client.watch(
            self._path, params=params, read_timeout=self._watch_timeout + 30
        )
        async for event in stream:
            self.last_contact = time.monotonic()
            kind, obj = event.get("type", ""), event.get("object", {})
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone(410, "Expired", str(obj.get("message", "")))
                raise ApiError(int(obj.get("code") or 0), str(obj.get("reason", "")),
                               str(obj.get("message", "")))
            version = obj.get("metadata", {}).get("resourceVersion")
            if version:
                self.resource_version = version
            if kind != "BOOKMARK":
                await self._on_event(kind, obj)
