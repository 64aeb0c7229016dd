"""The common machinery of the fake providers: a real aiohttp server on loopback.

`FakeProvider` records every request, asks its `Script` what to do, and carries out the
faults that look the same for every provider (hang, reset, cut or reset stream, slow
drip, malformed body). The wire-format subclasses (`fakes/openai.py`, `anthropic.py`,
`gemini.py`) supply routes, bodies, stream frames and error bodies in their provider's
real shape. Used from pytest (`await FakeOpenAI.start()`) and, through `fakes/cli.py`, as
a separate process by `switchyard demo` and `bench/`.

Requests are recorded with their headers, so tests can assert which key arrived; a
record's repr leaves headers and body out, and the fakes log nothing (no access log).
Control routes under `/_fake/` let another process script a running fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import orjson
from aiohttp import web
from multidict import CIMultiDict

from switchyard_testing.fakes.script import STATUS_OF, Behaviour, Fault, Script

#: Records kept per fake: enough for any test, bounded for long bench runs.
MAX_RECORDS = 20_000

_JSON = "application/json"

#: OpenAI's stream terminator. The fakes build frames themselves rather than with the
#: gateway's encoder, so a bug there cannot hide behind a fake that shares it.
DONE_FRAME = b"data: [DONE]\n\n"


def sse_frame(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame; `data` must be a single line (compact JSON is)."""
    if event:
        return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: Mapping[str, str]
    model: str
    stream: bool
    headers: CIMultiDict[str] = dataclasses.field(repr=False)
    body: bytes = dataclasses.field(repr=False)
    #: When it arrived (`time.monotonic()`), so tests can check the spacing of retries.
    at: float = 0.0

    def json(self) -> Any:
        """The request body, parsed."""
        return orjson.loads(self.body)


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    """What a request asks for, as the wire format understood it."""

    name: str  # "chat", "completions", "embeddings", "messages", "generate", "embed", ...
    model: str
    stream: bool
    payload: dict[str, Any]


class FakeProvider:
    """Base of the fakes. Subclasses fill in the wire-format hooks."""

    wire: ClassVar[str] = ""
    malformed_body: ClassVar[bytes] = b'{"id": "broken", "choices": ['
    malformed_frame: ClassVar[bytes] = b'data: {"broken": \n\n'

    def __init__(
        self,
        name: str = "fake",
        script: Script | None = None,
        expected_key: str | None = None,
        chunk_delay: float = 0.0,
    ) -> None:
        self.name = name
        self.script = script or Script()
        self.expected_key = expected_key
        self.chunk_delay = chunk_delay
        self.requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDS)
        self.host = "127.0.0.1"
        self.port = 0
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # Lifecycle

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> Self:
        """Create a fake and serve it on host:port (port 0 picks a free one)."""
        fake = cls(**kwargs)
        await fake.serve(host, port)
        return fake

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start listening; `self.port` holds the bound port afterwards."""
        app = web.Application()
        app.add_routes(self.routes())
        app.add_routes(
            [
                web.post("/_fake/script", self._control_script),
                web.get("/_fake/requests", self._control_requests),
                web.delete("/_fake/requests", self._control_forget),
            ]
        )
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        assert isinstance(server, asyncio.base_events.Server)
        self.host = host
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop serving; hanging requests are released first."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the provider's SDK (and a target's `baseUrl`) means by base URL."""
        return self.url

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """The recorded requests that named `model`."""
        return [r for r in self.requests if r.model == model]

    # Hooks for the wire formats

    def routes(self) -> list[web.RouteDef]:
        """The provider's API routes; each handler calls `self.handle(request, name)`."""
        raise NotImplementedError

    def operation(self, request: web.Request, name: str, payload: dict[str, Any]) -> Operation:
        """What `request` asks for."""
        raise NotImplementedError

    def api_key(self, request: web.Request) -> str | None:
        """The key the request carried, where this provider expects it."""
        raise NotImplementedError

    def error_body(self, status: int, behaviour: Behaviour) -> bytes:
        """The provider's error JSON for `status`."""
        raise NotImplementedError

    def wire_status(self, status: int) -> int:
        """The status this provider really sends for a scripted error status."""
        return status

    def success_body(self, op: Operation) -> bytes:
        """A complete non-streaming response."""
        raise NotImplementedError

    def stream_frames(self, op: Operation) -> Sequence[bytes]:
        """Complete SSE frames of a successful stream, its terminator last."""
        raise NotImplementedError

    def in_band_error_frame(self) -> bytes:
        """The provider's error event inside a 200 stream."""
        raise NotImplementedError

    def reply_text(self, op: Operation) -> str:
        """The assistant's reply: names the fake and model, so tests see who served."""
        return f"Hello from {self.name} ({op.model})."

    # Request handling

    async def handle(self, request: web.Request, name: str) -> web.StreamResponse:
        """Record the request, then answer as the script says."""
        raw = await request.read()
        try:
            payload = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            return self._error(400, Behaviour(Fault.BAD_REQUEST))
        op = self.operation(request, name, payload)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                model=op.model,
                stream=op.stream,
                headers=CIMultiDict(request.headers),
                body=raw,
                at=time.monotonic(),
            )
        )
        behaviour = self.script.next(op.model)
        return await self._act(request, op, behaviour)

    async def _act(
        self, request: web.Request, op: Operation, behaviour: Behaviour
    ) -> web.StreamResponse:
        fault = behaviour.fault
        if fault is Fault.HANG:
            await self._hang(behaviour.hang_seconds)
        elif fault is Fault.RESET:
            _reset(request)
            return web.Response(status=500)  # never reaches the client
        if self.expected_key is not None and self.api_key(request) != self.expected_key:
            return self._error(401, behaviour)
        status = STATUS_OF.get(fault)
        if status is not None:
            return self._error(status, behaviour)
        if not op.stream:
            if fault is Fault.MALFORMED:
                return web.Response(body=self.malformed_body, content_type=_JSON)
            if fault in (Fault.CUT_STREAM, Fault.RESET_STREAM, Fault.IN_BAND_ERROR,
                         Fault.STALL):
                return self._error(500, behaviour)
            return web.Response(body=self.success_body(op), content_type=_JSON)
        return await self._stream(request, op, behaviour)

    async def _stream(
        self, request: web.Request, op: Operation, behaviour: Behaviour
    ) -> web.StreamResponse:
        frames = list(self.stream_frames(op))
        fault = behaviour.fault
        delay = behaviour.slow_delay if fault is Fault.SLOW else self.chunk_delay
        cut = behaviour.frames_before_fault(len(frames))
        if fault is Fault.MALFORMED:
            frames = [*frames[:cut], self.malformed_frame]
        elif fault is Fault.IN_BAND_ERROR:
            frames = [*frames[:cut], self.in_band_error_frame()]
        elif fault in (Fault.CUT_STREAM, Fault.RESET_STREAM):
            frames = frames[: min(cut, len(frames) - 1)]
        elif fault is Fault.NO_DONE:
            frames = frames[:-1]
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for index, frame in enumerate(frames):
            if fault is Fault.STALL and index == cut:
                await self._hang(behaviour.hang_seconds)
            if delay:
                await asyncio.sleep(delay)
            await response.write(frame)
        if fault is Fault.RESET_STREAM:
            _reset(request)
            return response
        await response.write_eof()
        return response

    async def _hang(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _error(self, status: int, behaviour: Behaviour) -> web.Response:
        headers = {}
        if (behaviour.fault is not Fault.RATE_LIMIT_BARE and behaviour.retry_after > 0
                and status in (429, 503, 529)):
            headers["Retry-After"] = _seconds(behaviour.retry_after)
        return web.Response(
            status=self.wire_status(status),
            body=self.error_body(status, behaviour),
            content_type=_JSON,
            headers=headers,
        )

    # Control routes (for fakes running as separate processes)

    async def _control_script(self, request: web.Request) -> web.Response:
        spec = await request.json()
        if spec.get("clear"):
            self.script.clear()
        if "rates" in spec:
            self.script.set_rates({Fault(k): float(v) for k, v in spec["rates"].items()})
        behaviours = [Behaviour(**{**b, "fault": Fault(b["fault"])}) for b in spec.get("push", [])]
        self.script.push(*behaviours, model=spec.get("model"))
        return web.json_response({"ok": True})

    async def _control_requests(self, request: web.Request) -> web.Response:
        listing = [
            {"method": r.method, "path": r.path, "model": r.model, "stream": r.stream}
            for r in self.requests
        ]
        return web.Response(
            body=orjson.dumps({"count": len(listing), "requests": listing}), content_type=_JSON
        )

    async def _control_forget(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return web.json_response({"ok": True})


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _reset(request: web.Request) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a crashed upstream would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
