"""An SSE upstream that sends its first content event and then holds the stream open.

`python bench/holdopen.py PORT` serves `POST /v1/chat/completions` over plain HTTP/1.1: a
content chunk, then nothing until the client goes away (at most 120 s, then `[DONE]`).
`bench.scale` opens many streams through the gateway to it to measure the gateway's
memory per open stream.

`python bench/holdopen.py PORT h1|h2 CERT KEY` serves the same over TLS, HTTP/1.1 (aiohttp)
or HTTP/2 (the test kit's h2 server, 100 streams per connection); every `POST /tick`
makes each open stream send one more chunk. `bench.streams` uses it for the
ten-thousand-streams section.
"""

from __future__ import annotations

import asyncio
import ssl
import sys

from aiohttp import web

CHUNK = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
         b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n')
HOLD_SECONDS = 300.0


async def stream(request: web.Request) -> web.StreamResponse:
    """First content event now, the end much later."""
    await request.read()
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(CHUNK)
    await asyncio.sleep(120)
    await response.write(b"data: [DONE]\n\n")
    return response


def _h1_app() -> web.Application:
    held: set[asyncio.Queue[bytes]] = set()

    async def held_stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(CHUNK)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        held.add(queue)
        try:
            async with asyncio.timeout(HOLD_SECONDS):
                while True:
                    await response.write(await queue.get())
        finally:
            held.discard(queue)

    async def tick(request: web.Request) -> web.Response:
        for queue in held:
            queue.put_nowait(CHUNK)
        return web.Response(text=str(len(held)))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", held_stream)
    app.router.add_post("/tick", tick)
    return app


async def _serve_h2(port: int, cert: str, key: str) -> None:
    from switchyard_testing.h2server import H2Server, ServerStream
    held: set[ServerStream] = set()
    sends: set[asyncio.Task[None]] = set()

    async def handle(s: ServerStream) -> None:
        if s.headers[":path"] == "/tick":
            for other in list(held):
                if not other.closed.is_set():
                    task = asyncio.ensure_future(other.send(CHUNK))
                    sends.add(task)
                    task.add_done_callback(sends.discard)
            await s.respond(200)
            await s.send(str(len(held)).encode(), end=True)
            return
        await s.respond(200, [("content-type", "text/event-stream")])
        await s.send(CHUNK)
        held.add(s)
        try:
            async with asyncio.timeout(HOLD_SECONDS):
                await s.closed.wait()
        finally:
            held.discard(s)

    server = H2Server(handle, max_streams=100)
    await server.start(cert, key, port=port)
    await asyncio.Event().wait()


def main() -> None:
    port = int(sys.argv[1])
    if len(sys.argv) == 2:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", stream)
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
        return
    mode, cert, key = sys.argv[2:5]
    if mode == "h2":
        asyncio.run(_serve_h2(port, cert, key))
        return
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    web.run_app(_h1_app(), host="127.0.0.1", port=port, ssl_context=tls, access_log=None,
                print=None, backlog=4096)


if __name__ == "__main__":
    main()
