"""Security checks: TLS verified upstream, no key echoed back, names stay in their namespace.

Other security properties are tested where they live: inbound auth and the caller's
`Authorization` never forwarded (tests/reliability/test_auth.py,
tests/integration/gateway/test_openai_sdk.py), request-id propagation (test_openai_sdk.py
and test_bad_input.py), forged ConfigMaps and bare names in a cluster
(tests/e2e/test_gateway_cluster.py), `baseUrl`/`apiKey.envVar` allow-lists
(tests/unit/operator/test_validate.py), keys in logs of a long faulty run
(test_chaos.py).
"""

from __future__ import annotations

import logging
import pathlib
import ssl
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from switchyard_testing import certs
from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import endpoint, openai_target, running_gateway

KEY = "sk-security-check-8c8c8c"
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture
async def https_upstream(tmp_path: pathlib.Path) -> AsyncIterator[tuple[str, list[str]]]:
    """An OpenAI-shaped HTTPS server whose certificate no default trust store knows."""
    pki = certs.generate(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    seen: list[str] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"id": "x", "object": "chat.completion", "created": 0,
                                  "model": "m", "choices": []})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


async def test_self_signed_upstream_is_refused(tmp_path: pathlib.Path,
                                               https_upstream: tuple[str, list[str]]) -> None:
    url, seen = https_upstream
    doc = endpoint("chat", [openai_target("tls", url, "P_KEY", weight=100)])
    async with running_gateway(tmp_path / "cfg", [doc], {"P_KEY": KEY}) as gw, \
            aiohttp.ClientSession() as http, \
            http.post(gw.url + "/v1/chat/completions", json=CHAT) as resp:
        body = await resp.json()
        assert resp.status == 502
    attempt = body["error"]["attempts"][0]
    assert attempt["outcome"] == "connectionError"
    assert seen == []  # the handshake failed: the key never left the gateway


@pytest.fixture
async def echoing_upstream() -> AsyncIterator[str]:
    """A misbehaving provider that puts the key it received into every error message."""

    async def chat(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        body = await request.json()
        status = {"caller": 400, "auth": 401, "server": 500, "limit": 429}[body["user"]]
        message = f"request with key {auth.removeprefix('Bearer ')} failed"
        return web.json_response({"error": {"message": message, "type": "x", "code": "x"}},
                                 status=status)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("kind", ["caller", "auth", "server", "limit"])
async def test_a_key_echoed_by_the_provider_never_reaches_caller_logs_or_metrics(
        tmp_path: pathlib.Path, echoing_upstream: str, kind: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    doc = endpoint("chat", [openai_target("echo", echoing_upstream, "P_KEY", weight=100)])
    async with running_gateway(tmp_path / "cfg", [doc], {"P_KEY": KEY}) as gw, \
            aiohttp.ClientSession() as http:
        for stream in (False, True):
            async with http.post(gw.url + "/v1/chat/completions",
                                 json={**CHAT, "user": kind, "stream": stream}) as resp:
                raw = await resp.read()
                headers = str(dict(resp.headers))
            assert resp.status >= 400
            assert orjson.loads(raw)["error"]["message"]
            assert KEY not in raw.decode() and KEY not in headers
        async with http.get(gw.admin_url + "/metrics") as resp:
            assert KEY not in await resp.text()
    assert KEY not in caplog.text


async def test_a_bare_name_never_reaches_another_namespace(tmp_path: pathlib.Path) -> None:
    async with await FakeOpenAI.start(name="p", expected_key=KEY) as fake:
        doc = endpoint("private", [openai_target("gpt", fake.base_url, "P_KEY", weight=100)],
                       namespace="team-b")
        async with running_gateway(tmp_path / "cfg", [doc], {"P_KEY": KEY}) as gw, \
                aiohttp.ClientSession() as http:
            for model, status in (("private", 404), ("default/private", 404),
                                  ("team-b/private", 200)):
                async with http.post(gw.url + "/v1/chat/completions",
                                     json={**CHAT, "model": model}) as resp:
                    assert resp.status == status, model
            async with http.get(gw.url + "/v1/models/private") as resp:
                assert resp.status == 404
        assert len(fake.requests) == 1
