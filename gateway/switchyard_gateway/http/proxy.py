"""The shared path of every routed request: resolve, admit, route, respond.

The OpenAI and MLflow routes parse their URL and body shapes, then call `serve` with the
task they expect. This module checks the caller may use the endpoint (`--auth kubernetes`,
403 whether or not it exists), resolves it (404 if unknown), applies load
shedding (gateway-wide and per endpoint, 503 + Retry-After), derives the sticky key, and
hands the request to the router; it writes the JSON answer or relays the stream.
"""

from __future__ import annotations

from aiohttp import web

from switchyard_gateway import errors
from switchyard_gateway.config.compiled import CompiledEndpoint
from switchyard_gateway.http import access, sse
from switchyard_gateway.http.parsing import ParsedBody, check_body, read_json
from switchyard_gateway.http.state import STATE, TRACE, GatewayState
from switchyard_gateway.routing.attempts import Call
from switchyard_schema import Task

_JSON_HEADERS = {"Content-Type": "application/json"}


def resolve(state: GatewayState, model: str) -> CompiledEndpoint:
    """The endpoint `model` names. Raises UnknownEndpoint."""
    endpoint = state.store.resolve(model)
    if endpoint is None:
        raise errors.UnknownEndpoint(
            f"no endpoint named {errors.cut(model, 200)!r} (use 'name' for the "
            f"'{state.store.default_namespace}' namespace or 'namespace/name')")
    return endpoint


def admit(state: GatewayState, endpoint: CompiledEndpoint) -> None:
    """Count the request in flight, or refuse it with Overloaded. Pair with `release`.

    (Two plain calls around a try/finally, not a generator context manager: this runs on
    every request and the generator machinery cost more than the counting.)
    """
    limit = state.settings.max_in_flight
    if limit and state.in_flight >= limit:
        state.metrics.shed.labels("gateway").inc()
        raise errors.Overloaded("the gateway is at its in-flight request limit")
    per_endpoint = endpoint.policy.max_in_flight
    if per_endpoint and state.in_flight_by_endpoint[endpoint.key] >= per_endpoint:
        state.metrics.shed.labels("endpoint").inc()
        raise errors.Overloaded(f"endpoint {endpoint.key} is at its in-flight request limit")
    state.in_flight += 1
    state.in_flight_by_endpoint[endpoint.key] += 1
    state.metrics.in_flight.inc()


def release(state: GatewayState, endpoint: CompiledEndpoint) -> None:
    """The admitted request is over."""
    state.in_flight -= 1
    by_endpoint = state.in_flight_by_endpoint
    by_endpoint[endpoint.key] -= 1
    if not by_endpoint[endpoint.key]:
        del by_endpoint[endpoint.key]
    state.metrics.in_flight.dec()


def sticky_key(request: web.Request, endpoint: CompiledEndpoint, parsed: ParsedBody) -> str | None:
    """The caller key for sticky routing: the policy's header, else the `user` field."""
    policy = endpoint.policy
    if not policy.sticky_enabled:
        return None
    header = request.headers.get(policy.sticky_header)
    if header:
        return header
    return parsed.user if policy.sticky_use_user_field else None


async def serve(request: web.Request, task: Task, model: str | None = None) -> web.StreamResponse:
    """Handle one routed request for `task`; `model` given by the URL on MLflow paths."""
    state = request.app[STATE]
    trace = request[TRACE]
    data = await read_json(request, state.settings.max_body_bytes, state.settings.body_timeout)
    parsed = check_body(data, task, model)
    if state.guard is not None:  # --auth kubernetes: 403 before the name is looked up
        await access.authorize(request, state, state.guard, parsed.model)
    endpoint = resolve(state, parsed.model)
    trace.endpoint = endpoint.key
    if endpoint.task is not task:
        raise errors.InvalidRequest(
            f"endpoint {endpoint.key} serves the {endpoint.task.value} task, not {task.value}")
    router = state.router
    if router is None:
        raise errors.Overloaded("the gateway is starting")
    admit(state, endpoint)
    try:
        call = Call(endpoint, parsed.body, trace.request_id, trace.span)
        key = sticky_key(request, endpoint, parsed)
        if parsed.stream:
            committed = await router.open_stream(call, trace, key)
            return await sse.relay(request, committed, trace, state.metrics)
        result = await router.complete(call, trace, key)
        if trace.span is not None:
            trace.span.answered(result.body)
        return web.Response(body=result.body, headers=_JSON_HEADERS)
    finally:
        release(state, endpoint)
