"""Inbound auth (`--auth-tokens-file`): 401 without a valid bearer token, probes exempt,
constant-time comparison, reload on change, and the caller's token never sent upstream."""

from __future__ import annotations

import asyncio
import hmac
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from switchyard_gateway.http import auth
from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import (
    Gateway,
    endpoint,
    openai_target,
    running_gateway,
    wait_for,
)

KEY = "sk-provider-auth-test-7d1e"
TOKENS = ["tok-alpha-1111", "tok-beta-2222"]
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="primary", expected_key=KEY) as f:
        yield f


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fake: FakeOpenAI) -> AsyncIterator[Gateway]:
    tokens = tmp_path / "tokens"
    tokens.write_text("# inbound tokens\n\n" + "\n".join(TOKENS) + "\n")
    doc = endpoint("chat", [openai_target("gpt", fake.base_url, "P_KEY", weight=100)])
    async with running_gateway(tmp_path / "cfg", [doc], {"P_KEY": KEY},
                               auth_tokens_file=str(tokens)) as gw:
        yield gw


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Bearer wrong-token", "Basic dG9rLWFscGhhLTExMTE=",
    "Bearer tok-alpha-111", "Bearer tok-alpha-11111", f"Bearer {TOKENS[0].upper()}",
])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/endpoints/chat/invocations"])
async def test_missing_or_wrong_token_is_401(gateway: Gateway, fake: FakeOpenAI,
                                             header: str | None, path: str) -> None:
    headers = {"Authorization": header} if header is not None else {}
    async with aiohttp.ClientSession() as http, http.post(
            gateway.url + path, json=CHAT, headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 401
        assert resp.headers["x-request-id"]
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == "invalid_api_key"
    for token in TOKENS:
        assert token not in str(body)
    assert not fake.requests  # nothing reached the provider


async def test_get_routes_need_a_token_too(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/models", "/api/2.0/endpoints/", "/v2/unknown"):
            async with http.get(gateway.url + path) as resp:
                assert resp.status == 401, path


async def test_probes_are_exempt_and_metrics_only_on_the_admin_port(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/healthz", "/readyz"):
            async with http.get(gateway.url + path) as resp:
                assert resp.status == 200, path
        for path in ("/healthz", "/readyz", "/metrics", "/ui", "/ui/status.json"):
            async with http.get(gateway.admin_url + path) as resp:
                assert resp.status == 200, path
        for path in ("/metrics", "/ui", "/ui/status.json"):  # not on the API port at all
            async with http.get(gateway.url + path, headers={
                    "Authorization": f"Bearer {TOKENS[0]}"}) as resp:
                assert resp.status == 404, path


async def test_valid_token_with_the_sdk_and_not_forwarded(gateway: Gateway,
                                                          fake: FakeOpenAI) -> None:
    for token in TOKENS:
        client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=token, max_retries=0)
        reply = await client.chat.completions.create(model="chat", messages=CHAT["messages"])
        assert reply.choices[0].message.content
        stream = await client.chat.completions.create(model="chat", messages=CHAT["messages"],
                                                      stream=True)
        assert [c async for c in stream]
    for sent in fake.requests:
        assert sent.headers["Authorization"] == f"Bearer {KEY}"
        assert all(token not in str(dict(sent.headers)) for token in TOKENS)
        assert all(token.encode() not in sent.body for token in TOKENS)
    bad = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await bad.chat.completions.create(model="chat", messages=CHAT["messages"])


def test_every_token_is_compared_whatever_matches(tmp_path: pathlib.Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time: the same number of full-length digest comparisons for any token."""
    path = tmp_path / "tokens"
    path.write_text("\n".join(f"token-{i}" for i in range(5)))
    tokens = auth.TokenFile(path)
    tokens.load()
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for presented in ("token-0", "token-4", "t", "x" * 500, ""):
        calls.clear()
        tokens.accepts(presented)
        assert calls == [(32, 32)] * 5


def test_empty_file_refuses_everyone(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# nobody\n\n")
    tokens = auth.TokenFile(path)
    tokens.load()
    assert not tokens.accepts("")
    assert not tokens.accepts("# nobody")


async def test_tokens_reload_on_change_and_survive_a_broken_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("old-token\n")
    tokens = auth.TokenFile(path)
    tokens.load()
    watcher = asyncio.create_task(tokens.watch(0.01))
    try:
        path.write_text("new-token\n")
        await wait_for(lambda: tokens.accepts("new-token"))
        assert not tokens.accepts("old-token")
        path.unlink()  # a Secret volume mid-update: keep the last tokens
        await asyncio.sleep(0.05)
        assert tokens.accepts("new-token")
        path.write_text("newer-token\n")
        await wait_for(lambda: tokens.accepts("newer-token"))
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
