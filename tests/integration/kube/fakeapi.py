"""A loopback stand-in for the API server's LIST and WATCH, recording what it was sent.

Plays the parts the pager and the reflector rely on: `limit` and `continue` paging over a
fixed snapshot, a 410 `Expired` answer to a continue token it was told to expire, a
label selector of the `key=value` form, and a watch that sends one BOOKMARK and ends.
Every request is recorded with its raw (still escaped) path and its query, so tests assert
on what crossed the wire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from switchyard_kube import client as kubeclient


@dataclasses.dataclass(frozen=True)
class Seen:
    method: str
    raw_path: str
    query: dict[str, str]


def secret(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels or {},
                         "resourceVersion": "7"}, "data": {}}


@dataclasses.dataclass
class FakeApi:
    """The collection `items`; `expire` = how many continue tokens to answer with 410."""

    items: list[dict[str, Any]]
    expire: int = 0
    version: str = "100"
    seen: list[Seen] = dataclasses.field(default_factory=list)
    objects: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    watched: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def _selected(self, selector: str) -> list[dict[str, Any]]:
        if not selector:
            return self.items
        key, _, value = selector.partition("=")
        return [i for i in self.items if i["metadata"]["labels"].get(key) == value]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.seen.append(Seen(request.method, request.raw_path.split("?")[0], query))
        if query.get("watch") == "true":
            self.watched.set()
            return await self._watch(request)
        raw = request.raw_path.split("?")[0]
        if raw in self.objects:
            return web.json_response(self.objects[raw])
        if not raw.endswith("/secrets"):
            return web.json_response({"kind": "Status", "reason": "NotFound",
                                      "message": "not found"}, status=404)
        return self._list(query)

    def _list(self, query: dict[str, str]) -> web.Response:
        chosen = self._selected(query.get("labelSelector", ""))
        start = 0
        if "continue" in query:
            if self.expire > 0:
                self.expire -= 1
                return web.json_response(
                    {"kind": "Status", "code": 410, "reason": "Expired",
                     "message": "The provided continue parameter is too old"}, status=410)
            start = int(query["continue"])
        limit = int(query.get("limit", "0")) or len(chosen)
        page = chosen[start:start + limit]
        meta: dict[str, Any] = {"resourceVersion": self.version}
        if start + limit < len(chosen):
            meta["continue"] = str(start + limit)
        return web.json_response({"kind": "List", "metadata": meta, "items": page})

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        bookmark = {"type": "BOOKMARK",
                    "object": {"metadata": {"resourceVersion": self.version}}}
        await response.write(json.dumps(bookmark).encode() + b"\n")
        return response


async def serve(api: FakeApi) -> AsyncIterator[kubeclient.Client]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with kubeclient.Client(kubeclient.Connection(
            server=str(server.make_url("")).rstrip("/")
        )) as client:
            yield client
    finally:
        await server.close()
