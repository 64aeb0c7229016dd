"""The Python floor: a minimal aiohttp pass-through proxy (one session, uvloop, no checks).

`python bench/naive_proxy.py --port P --upstream URL --upstream URL --sse URL --sse URL`
forwards each POST to one of the upstreams, 50/50 at random (the SSE pair when the body
asks for a stream, found by a byte search, not a parse), and relays the answer as it
arrives. What any aiohttp gateway must at least do; everything Switchyard does beyond it
(parsing, routing, fallbacks, metrics, access log) is the overhead the benchmark shows.
"""

from __future__ import annotations

import argparse
import random

import aiohttp
import uvloop
from aiohttp import web


def make_app(upstreams: list[str], sse: list[str]) -> web.Application:
    """The proxy app, with its one ClientSession opened in cleanup_ctx."""
    app = web.Application()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app[session_key].close()

    async def proxy(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        stream = b'"stream":true' in body.replace(b" ", b"")
        url = random.choice(sse if stream else upstreams) + request.path.removeprefix("/v1")
        headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
        async with app[session_key].post(url, data=body, headers=headers) as upstream:
            if not stream:
                return web.Response(status=upstream.status, body=await upstream.read(),
                                    content_type="application/json")
            response = web.StreamResponse(status=upstream.status, headers={
                "content-type": upstream.headers.get("content-type", "application/json")})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/v1/{path:.*}", proxy)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", action="append", required=True)
    parser.add_argument("--sse", action="append", required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(make_app(args.upstream, args.sse), host="127.0.0.1", port=args.port,
                access_log=None, print=None)
