"""Helpers for tests that run `switchyard gateway` as a real process over fake providers.

The fakes run in the test's event loop; the gateway is a child process started exactly as
its container runs it (`switchyard_testing.stack.gateway`), so SIGTERM, the listener and
the server's timeouts are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import yaml

from switchyard_testing import stack


@contextlib.asynccontextmanager
async def gateway_process(tmp: pathlib.Path, docs: Sequence[Any], env: Mapping[str, str],
                          extra: Sequence[str] = ()) -> AsyncIterator[stack.Service]:
    """Write `docs` and run a standalone gateway on them until the block ends."""
    cfg = tmp / "cfg"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "endpoints.yaml").write_text(yaml.safe_dump_all(list(docs)))
    service = stack.gateway(None, tmp, config=cfg, extra=list(extra), env=dict(env))
    service.start()
    try:
        await asyncio.to_thread(service.wait_for, "/readyz", 60.0)
        yield service
    finally:
        await asyncio.to_thread(service.stop, 15.0)


async def read_sse(resp: aiohttp.ClientResponse) -> list[bytes]:
    """The `data:` payloads of an SSE response, in order."""
    out: list[bytes] = []
    async for line in resp.content:
        if line.startswith(b"data: "):
            out.append(line[6:].strip())
    return out


async def status_of(url: str) -> int:
    """GET `url` on a fresh connection; 0 when nothing accepts it."""
    try:
        async with aiohttp.ClientSession() as http, http.get(
                url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            return resp.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def until(predicate: Any, bound: float = 30.0, step: float = 0.02) -> None:
    """Await `predicate()` (sync or async) until true; fail after `bound` s (hang guard)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + bound
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(step)
