"""OpenAI-compatible routes: what the official `openai` SDK calls.

`POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings` (the body's `model`
names the endpoint), and `GET /v1/models[/{model}]` listing the endpoints (with
`--auth kubernetes`, only those the caller may use: `access.py`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.http import access, proxy
from switchyard_gateway.http.state import STATE
from switchyard_schema import Task


def display_name(endpoint: CompiledEndpoint, default_namespace: str) -> str:
    """The bare name in the default namespace, `namespace/name` elsewhere."""
    return endpoint.name if endpoint.namespace == default_namespace else endpoint.key


def model_entry(endpoint: CompiledEndpoint, default_namespace: str) -> dict[str, Any]:
    """One `/v1/models` item."""
    return {"id": display_name(endpoint, default_namespace), "object": "model",
            "created": 0, "owned_by": "switchyard"}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions."""
    return await proxy.serve(request, Task.CHAT)


async def completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions."""
    return await proxy.serve(request, Task.COMPLETIONS)


async def embeddings(request: web.Request) -> web.StreamResponse:
    """POST /v1/embeddings."""
    return await proxy.serve(request, Task.EMBEDDINGS)


async def list_models(request: web.Request) -> web.Response:
    """GET /v1/models: every endpoint this gateway serves (that the caller may use)."""
    state = request.app[STATE]
    store = state.store
    ns = store.default_namespace
    endpoints = [e for _, e in sorted(store.snapshot().items())]
    if state.guard is not None:
        endpoints = await access.usable(request, state.guard, endpoints)
    items = [model_entry(e, ns) for e in endpoints]
    return web.json_response({"object": "list", "data": items})


async def get_model(request: web.Request) -> web.Response:
    """GET /v1/models/{model}."""
    state = request.app[STATE]
    if state.guard is not None:
        await access.authorize(request, state, state.guard, request.match_info["model"])
    endpoint = proxy.resolve(state, request.match_info["model"])
    return web.json_response(model_entry(endpoint, state.store.default_namespace))


def add_routes(app: web.Application) -> None:
    """Register the OpenAI routes."""
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
