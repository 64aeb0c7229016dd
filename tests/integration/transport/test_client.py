"""`transport.Client`: direct origins through the pool, proxied ones through aiohttp, one
response surface and one error tree either way."""

from __future__ import annotations

import asyncio

import pytest

from switchyard_gateway.transport import BodyCutOff, Client, ConnectError, Pool
from switchyard_gateway.transport.proxied import ProxiedResponse
from tests.integration.transport.wire import BODY, Server, answer, fixed


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                 "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_direct_origin_goes_through_the_pool(no_proxy_env: pytest.MonkeyPatch) -> None:
    server = await Server(fixed(answer(b"{}"))).start()
    client = Client()
    try:
        response = await client.request("POST", server.url(), {}, BODY)
        assert isinstance(client.pool, Pool) and not isinstance(response, ProxiedResponse)
        assert await response.read() == b"{}"
        response.release()
        assert client.pool.idle_connections() == 1
    finally:
        await client.close()
        await server.stop()


async def test_proxied_origin_goes_through_the_environment_proxy(
        no_proxy_env: pytest.MonkeyPatch) -> None:
    proxy = await Server(fixed(answer(b'{"via":"proxy"}', b"Retry-After: 3",
                                      status=b"429 Too Many Requests"))).start()
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    client = Client()
    try:
        response = await client.request("POST", "http://provider.invalid/v1/chat/completions",
                                        {"Authorization": "Bearer sk-x"}, BODY)
        assert isinstance(response, ProxiedResponse)
        assert response.status == 429 and response.headers["Retry-After"] == "3"
        assert await response.read() == b'{"via":"proxy"}'
        response.release()
        request_line = proxy.requests[0].split(b"\r\n", 1)[0]
        assert request_line == b"POST http://provider.invalid/v1/chat/completions HTTP/1.1"
    finally:
        await client.close()
        await proxy.stop()


async def test_no_proxy_bypasses_the_proxy(no_proxy_env: pytest.MonkeyPatch) -> None:
    server = await Server(fixed(answer(b"{}"))).start()
    no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would refuse
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    client = Client()
    try:
        response = await client.request("POST", server.url(), {}, BODY)
        assert await response.read() == b"{}"
        response.release()
    finally:
        await client.close()
        await server.stop()


async def test_proxied_failures_use_the_transport_errors(
        no_proxy_env: pytest.MonkeyPatch) -> None:
    dead = await Server(fixed(b"")).start()
    port = dead.port
    await dead.stop()
    await asyncio.sleep(0.01)
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    client = Client()
    try:
        with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
            await client.request("POST", "http://provider.invalid/v1", {}, BODY)
    finally:
        await client.close()

    cutting = await Server(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{", close=True)
                           ).start()
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{cutting.port}")
    client = Client()
    try:
        response = await client.request("POST", "http://provider.invalid/v1", {}, BODY)
        with pytest.raises(BodyCutOff):
            await response.read()
        response.close()
    finally:
        await client.close()
        await cutting.stop()
