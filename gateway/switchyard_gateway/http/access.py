"""Which endpoints the caller of a request may use (`--auth kubernetes`).

Called by the routes before an endpoint is used or shown: `authorize` before a request is
routed or an endpoint described, `usable` to filter the listings. The decision is RBAC's
(`identity.Guard.allows`: verb `use` on gatewayendpoints, cached briefly). A caller who may
not use a name gets the same 403 whether or not an endpoint of that name exists; only a
caller who may use it learns that it does not (404, from the route). Without a guard (no
`--auth kubernetes`) nothing here runs: the routes test `state.guard` first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from switchyard_gateway import errors
from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.http.state import CALLER, GatewayState
from switchyard_gateway.identity import Guard, ReviewUnavailable


def split(state: GatewayState, model: str) -> tuple[str, str]:
    """The (namespace, name) a `model` value names (as `ConfigStore.resolve` reads it)."""
    if "/" in model:
        namespace, _, name = model.partition("/")
        return namespace, name
    return state.store.default_namespace, model


async def _allows(guard: Guard, request: web.Request, namespace: str, name: str) -> bool:
    try:
        return await guard.allows(request[CALLER], namespace, name)
    except ReviewUnavailable:
        raise errors.AuthUnavailable(
            "the gateway cannot check access right now; retry later") from None


async def authorize(request: web.Request, state: GatewayState, guard: Guard, model: str) -> None:
    """Raise Forbidden unless the caller may use the endpoint `model` names (or would)."""
    namespace, name = split(state, model)
    allowed = guard.decided(request[CALLER], namespace, name)  # cached: no await
    if allowed is None:
        allowed = await _allows(guard, request, namespace, name)
    if not allowed:
        raise errors.Forbidden(
            f"this caller may not use endpoint {errors.cut(model, 200)!r} (it needs 'use' on "
            "gatewayendpoints.switchyard.dev in the endpoint's namespace), or no such "
            "endpoint exists")


async def usable(request: web.Request, guard: Guard,
                 endpoints: Sequence[CompiledEndpoint]) -> list[CompiledEndpoint]:
    """The endpoints the caller may use, in the given order."""
    allowed = await asyncio.gather(
        *(_allows(guard, request, e.namespace, e.name) for e in endpoints))
    return [e for e, ok in zip(endpoints, allowed, strict=True) if ok]
