"""An SSE upstream that sends its first content event and then holds the stream open.

`python bench/holdopen.py PORT` serves `POST /v1/chat/completions`: a role chunk and one
content chunk, then nothing until the client goes away (at most 120 s, then `[DONE]`).
`bench.scale` opens many streams through the gateway to this server to measure the
gateway's memory per open stream.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

CHUNK = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
         b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n')


async def stream(request: web.Request) -> web.StreamResponse:
    """First content event now, the end much later."""
    await request.read()
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(CHUNK)
    await asyncio.sleep(120)
    await response.write(b"data: [DONE]\n\n")
    return response


if __name__ == "__main__":
    app = web.Application()
    app.router.add_post("/v1/chat/completions", stream)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
