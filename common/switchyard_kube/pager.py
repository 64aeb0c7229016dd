"""A LIST done in pages, as client-go's pager does it.

Called by `reflector.py` for every (re)list. Each page is one GET carrying `limit`, the
`labelSelector` (server-side filtering: objects the selector excludes never leave the API
server) and, after the first, the `continue` token of the page before. A continue token
that expired (410 Gone: the compacted etcd revision it pinned is gone) restarts the list
from the first page, since pages of two snapshots must not be mixed; after
`max_restarts` such restarts one unpaged LIST (still filtered) finishes the job, as
client-go's `FullListIfExpired` does, so a slow consumer of a big collection cannot loop.
Holds no state; never logs object contents.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from switchyard_kube.client import Client, Gone
from switchyard_kube.paths import ResourcePath

log = logging.getLogger(__name__)

Obj = dict[str, Any]

#: The page size the reflectors ask for (client-go's informers use 500 too).
DEFAULT_PAGE_SIZE = 500
#: Restarts after an expired continue token before one unpaged LIST is made instead.
DEFAULT_MAX_RESTARTS = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Listing:
    """Every item of one consistent LIST, and the resourceVersion to watch from."""

    items: list[Obj]
    resource_version: str
    pages: int
    restarts: int


async def list_all(
    client: Client,
    path: ResourcePath,
    *,
    label_selector: str = "",
    page_size: int = DEFAULT_PAGE_SIZE,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
) -> Listing:
    """LIST `path` page by page; restart on an expired continue token (see module doc).

    Raises what `Client.request` raises; `Gone` only if the first page of a list is gone.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    restarts = 0
    while True:
        unpaged = restarts > max_restarts
        try:
            items, version, pages = await _pages(
                client, path, label_selector, None if unpaged else page_size
            )
        except _ContinueExpired:
            restarts += 1
            log.info("LIST %s: continue token expired, listing again (%d)", path, restarts)
            continue
        return Listing(items, version, pages, restarts)


class _ContinueExpired(Exception):
    """A 410 on a page after the first."""


async def _pages(
    client: Client, path: ResourcePath, label_selector: str, limit: int | None
) -> tuple[list[Obj], str, int]:
    items: list[Obj] = []
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if limit is not None:
        params["limit"] = str(limit)
    pages = 0
    while True:
        try:
            page = await client.request("GET", path, params=params)
        except Gone as exc:
            if "continue" in params:
                raise _ContinueExpired from exc
            raise
        pages += 1
        items.extend(page.get("items") or [])
        meta = page.get("metadata") or {}
        token = meta.get("continue")
        if not token or limit is None:
            return items, str(meta.get("resourceVersion", "")), pages
        params["continue"] = str(token)
