"""MLflow deployments-server routes, so `mlflow.deployments.get_deploy_client(url)` works.

Shapes follow the installed client (`mlflow/deployments/mlflow/__init__.py`):
`GET /api/2.0/endpoints/` pages with `page_token` -> `{"endpoints", "next_page_token"}`;
`GET /api/2.0/endpoints/{name}` -> one `Endpoint` (name, endpoint_type, model,
endpoint_url, limit); `predict` posts to `/endpoints/{name}/invocations` with the OpenAI
body minus `model`, and reads back OpenAI-shaped JSON (MLflow's gateway schemas are the
OpenAI ones). MLflow 3's `/gateway/{name}/mlflow/invocations` and
`/gateway/mlflow/v1/chat/completions` are served too. `{name}` is the bare name (default
namespace) or `namespace/name`, raw or URL-encoded.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from aiohttp import web

from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.http import access, proxy
from switchyard_gateway.http.openai_routes import display_name
from switchyard_gateway.http.state import STATE
from switchyard_schema import Task

PAGE_SIZE = 100

_ENDPOINT_TYPE = {Task.CHAT: "llm/v1/chat", Task.COMPLETIONS: "llm/v1/completions",
                  Task.EMBEDDINGS: "llm/v1/embeddings"}


def endpoint_entry(endpoint: CompiledEndpoint, default_namespace: str) -> dict[str, Any]:
    """MLflow's `Endpoint` for one gateway endpoint (model: the first split target)."""
    name = display_name(endpoint, default_namespace)
    first = endpoint.split[0]
    return {
        "name": name,
        "endpoint_type": _ENDPOINT_TYPE[endpoint.task],
        "model": {"name": first.model, "provider": first.provider.value},
        "endpoint_url": f"/endpoints/{name}/invocations",
        "limit": None,
    }


def _name(request: web.Request) -> str:
    return urllib.parse.unquote(request.match_info["name"])


async def list_endpoints(request: web.Request) -> web.Response:
    """GET /api/2.0/endpoints/ (paged by an offset token)."""
    state = request.app[STATE]
    store = state.store
    token = request.query.get("page_token", "0")
    start = int(token) if token.isdigit() else 0
    endpoints = [e for _, e in sorted(store.snapshot().items())]
    if state.guard is not None:  # only what the caller may use (`access.py`)
        endpoints = await access.usable(request, state.guard, endpoints)
    page = endpoints[start:start + PAGE_SIZE]
    body: dict[str, Any] = {
        "endpoints": [endpoint_entry(e, store.default_namespace) for e in page]}
    if start + PAGE_SIZE < len(endpoints):
        body["next_page_token"] = str(start + PAGE_SIZE)
    return web.json_response(body)


async def get_endpoint(request: web.Request) -> web.Response:
    """GET /api/2.0/endpoints/{name}."""
    state = request.app[STATE]
    name = _name(request)
    if state.guard is not None:
        await access.authorize(request, state, state.guard, name)
    endpoint = proxy.resolve(state, name)
    return web.json_response(endpoint_entry(endpoint, state.store.default_namespace))


async def invocations(request: web.Request) -> web.StreamResponse:
    """POST /endpoints/{name}/invocations and /gateway/{name}/mlflow/invocations."""
    state = request.app[STATE]
    name = _name(request)
    if state.guard is not None:
        await access.authorize(request, state, state.guard, name)
    endpoint = proxy.resolve(state, name)
    return await proxy.serve(request, endpoint.task, model=name)


async def gateway_chat(request: web.Request) -> web.StreamResponse:
    """POST /gateway/mlflow/v1/chat/completions (MLflow 3; `model` in the body)."""
    return await proxy.serve(request, Task.CHAT)


def add_routes(app: web.Application) -> None:
    """Register the MLflow routes."""
    app.router.add_get("/api/2.0/endpoints/", list_endpoints)
    app.router.add_get("/api/2.0/endpoints", list_endpoints)
    app.router.add_get("/api/2.0/endpoints/{name:.+}", get_endpoint)
    app.router.add_post("/endpoints/{name:.+}/invocations", invocations)
    app.router.add_post("/gateway/mlflow/v1/chat/completions", gateway_chat)
    app.router.add_post("/gateway/{name:.+}/mlflow/invocations", invocations)
