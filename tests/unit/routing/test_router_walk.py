"""The router's fallback walk, driven without sockets: the real `Router`, `AttemptRunner`
and OpenAI adapter over the test kit's `MemoryTransport` (as httpx's `MockTransport`).

Covers the walk in order, the skip of a target in cooldown, a stream that fails before
its first content event (falls back) and one that fails after it (the target is final),
a caller fault (no fallback) and an SSE limit crossed in a stream (falls back, counted).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from switchyard_gateway import errors
from switchyard_gateway.credentials import Credentials
from switchyard_gateway.providers import registry
from switchyard_gateway.providers.sse import SseLimits
from switchyard_gateway.routing.attempts import AttemptRunner, Call
from switchyard_gateway.routing.cooldown import Cooldowns
from switchyard_gateway.routing.router import RequestTrace, Router
from switchyard_gateway.transport import BodyCutOff, ConnectError
from switchyard_testing.memory_transport import MemoryRequest, MemoryResponse, MemoryTransport
from tests.unit.gateway.endpoints import compiled, target

BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
ENV = {"OPENAI_API_KEY": "sk-unit-0000"}


def completion(text: str) -> MemoryResponse:
    return MemoryResponse(200, {"Content-Type": "application/json"}, orjson.dumps({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}))


def frame(text: str) -> bytes:
    return b"data: " + orjson.dumps({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}) + b"\n\n"


def stream(*pieces: bytes | BaseException) -> MemoryResponse:
    return MemoryResponse(200, {"Content-Type": "text/event-stream"}, chunks=pieces)


def server_error() -> MemoryResponse:
    return MemoryResponse(500, {"Content-Type": "application/json"},
                          b'{"error":{"message":"boom","type":"server_error"}}')


class Counts:
    def __init__(self) -> None:
        self.limits: collections.Counter[str] = collections.Counter()

    def limit_exceeded(self, limit: str) -> None:
        self.limits[limit] += 1

    def address_refused(self) -> None:
        pass

    def stale_retry(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def router_over(answers: dict[str, Callable[[], MemoryResponse]],
                sse_limits: SseLimits | None = None) -> tuple[Router, MemoryTransport, Counts]:
    """A router whose transport answers by the model the adapter sent."""
    def handler(request: MemoryRequest) -> MemoryResponse:
        return answers[request.json()["model"]]()
    transport = MemoryTransport(handler)
    counts = Counts()
    runner = AttemptRunner(transport, registry.adapter_for, Credentials(ENV),
                           sse_limits or SseLimits(), counts)
    return Router(runner, Cooldowns(Clock())), transport, counts


def endpoint(**policy: Any) -> Any:
    return compiled(split=[target("primary", 100)],
                    fallbacks=[target("fb1"), target("fb2")], policy=policy or None)


def models(transport: MemoryTransport) -> list[str]:
    return [r.json()["model"] for r in transport.requests]


async def test_fallbacks_are_walked_in_order_until_one_answers() -> None:
    """Fallback, not same-target retry, is under test here: retries are off."""
    def refused() -> MemoryResponse:
        raise ConnectError("fb1.test", 443, ConnectionRefusedError())
    router, transport, _ = router_over({"primary": server_error, "fb1": refused,
                                        "fb2": lambda: completion("from fb2")})
    trace = RequestTrace("r1")
    result = await router.complete(Call(endpoint(retry={"maxRetries": 0}), BODY, "r1"), trace)
    assert b"from fb2" in result.body
    assert models(transport) == ["primary", "fb1", "fb2"]
    assert [(a.target, a.outcome) for a in trace.attempts] == [
        ("primary", "serverError"), ("fb1", "connectionError"), ("fb2", "ok")]
    assert trace.target == "fb2"


async def test_target_in_cooldown_is_skipped_without_a_request() -> None:
    router, transport, _ = router_over({"primary": server_error,
                                        "fb1": lambda: completion("fb1")})
    ep = endpoint(cooldown={"failureThreshold": 1, "seconds": 30})
    await router.complete(Call(ep, BODY, "r1"), RequestTrace("r1"))
    transport.requests.clear()
    trace = RequestTrace("r2")
    await router.complete(Call(ep, BODY, "r2"), trace)
    assert models(transport) == ["fb1"]  # primary never asked
    assert [(a.target, a.outcome, a.sent) for a in trace.attempts] == [
        ("primary", "cooldown", False), ("fb1", "ok", True)]


async def test_stream_failing_before_its_first_content_falls_back() -> None:
    router, transport, _ = router_over({
        "primary": lambda: stream(b"data: {\"id\":\"c\",", BodyCutOff("cut")),
        "fb1": lambda: stream(frame("hello"), b"data: [DONE]\n\n")})
    trace = RequestTrace("r1")
    committed = await router.open_stream(Call(endpoint(), {**BODY, "stream": True}, "r1"),
                                         trace)
    frames = b"".join([f async for f in committed.frames()])
    committed.close()
    assert b"hello" in frames and frames.endswith(b"data: [DONE]\n\n")
    assert [(a.target, a.outcome) for a in trace.attempts] == [
        ("primary", "connectionError"), ("fb1", "ok")]
    assert transport.responses[0].closed  # the broken stream's connection is dropped


async def test_stream_failing_after_its_first_content_breaks_without_fallback() -> None:
    broken: list[errors.UpstreamError] = []
    router, transport, _ = router_over({
        "primary": lambda: stream(frame("partial"), BodyCutOff("cut mid-stream")),
        "fb1": lambda: stream(frame("never"), b"data: [DONE]\n\n")})
    committed = await router.open_stream(Call(endpoint(), {**BODY, "stream": True}, "r1"),
                                         RequestTrace("r1"))
    committed.on_break = broken.append
    got = []
    with pytest.raises(errors.StreamBroken):
        async for piece in committed.frames():
            got.append(piece)
    committed.close()
    assert b"partial" in b"".join(got)
    assert models(transport) == ["primary"]  # committed: the fallback is never asked
    assert broken and isinstance(broken[0], errors.UpstreamConnectionError)


async def test_caller_fault_is_returned_without_fallback() -> None:
    router, transport, _ = router_over({
        "primary": lambda: MemoryResponse(400, {"Content-Type": "application/json"},
                                          b'{"error":{"message":"bad","type":"x"}}'),
        "fb1": lambda: completion("never")})
    with pytest.raises(errors.CallerFault):
        await router.complete(Call(endpoint(), BODY, "r1"), RequestTrace("r1"))
    assert models(transport) == ["primary"]


async def test_endless_sse_line_falls_back_and_is_counted() -> None:
    router, transport, counts = router_over(
        {"primary": lambda: stream(b"data: ", *([b"x" * 1000] * 50)),
         "fb1": lambda: stream(frame("fine"), b"data: [DONE]\n\n")},
        SseLimits(line_bytes=10_000, event_bytes=20_000))
    trace = RequestTrace("r1")
    committed = await router.open_stream(Call(endpoint(), {**BODY, "stream": True}, "r1"),
                                         trace)
    frames = b"".join([f async for f in committed.frames()])
    committed.close()
    assert b"fine" in frames
    assert [(a.target, a.outcome) for a in trace.attempts] == [
        ("primary", "serverError"), ("fb1", "ok")]
    assert counts.limits == {"sse_line": 1}
    assert transport.responses[0].closed


async def test_timeout_from_the_transport_is_a_timeout_attempt() -> None:
    async def slow(request: MemoryRequest) -> MemoryResponse:
        if request.json()["model"] == "primary":
            await asyncio.Event().wait()  # never answers
        return completion("fb1")
    transport = MemoryTransport(slow)
    router = Router(AttemptRunner(transport, registry.adapter_for, Credentials(ENV)),
                    Cooldowns(Clock()))
    trace = RequestTrace("r1")
    ep = endpoint(attemptTimeoutSeconds=1)
    await router.complete(Call(ep, BODY, "r1"), trace)
    assert [(a.target, a.outcome) for a in trace.attempts] == [
        ("primary", "timeout"), ("fb1", "ok")]
