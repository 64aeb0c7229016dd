"""Bad input from callers: each gets a clear OpenAI-style 4xx, never a crash or a traceback.

Complements tests/integration/gateway/test_http_edges.py (basic 400/404/405/413) with the
issue's list: wrong types, invalid `n`/`stream`, non-UTF-8 and non-JSON bodies, deep
nesting, bodies over the limit on every route, odd paths, and the MLflow routes. After
the barrage the gateway still answers and its upstream saw none of these requests.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

KEY = "sk-bad-input-5e5e"
MSG = [{"role": "user", "content": "x"}]
LIMIT = 64 * 1024


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="p", expected_key=KEY) as f:
        yield f


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fake: FakeOpenAI) -> AsyncIterator[Gateway]:
    docs = [endpoint("chat", [openai_target("gpt", fake.base_url, "P_KEY", weight=100)]),
            endpoint("embed", [openai_target("emb", fake.base_url, "P_KEY", weight=100)],
                     task="embeddings")]
    async with running_gateway(tmp_path / "cfg", docs, {"P_KEY": KEY},
                               max_body_bytes=LIMIT) as gw:
        yield gw


def _j(value: object) -> bytes:
    return orjson.dumps(value)


CHAT = "/v1/chat/completions"
CASES: list[tuple[str, str, bytes, int]] = [
    ("empty body", CHAT, b"", 400),
    ("not json", CHAT, b"model=chat&messages=hi", 400),
    ("json array", CHAT, b"[1, 2]", 400),
    ("json string", CHAT, b'"chat"', 400),
    ("json null", CHAT, b"null", 400),
    ("non-utf8 bytes", CHAT, b"\xff\xfe{\x00\"model\x00", 400),
    ("invalid utf8 in a string", CHAT, b'{"model": "chat", "messages": [{"content": "\xc3\x28"}]}',
     400),
    ("lone surrogate escape", CHAT, b'{"model": "ch\\ud800at", "messages": []}', 400),
    ("deep nesting", CHAT, b'{"model": "chat", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     400),
    ("trailing garbage", CHAT, _j({"model": "chat", "messages": MSG}) + b"}}", 400),
    ("model a number", CHAT, _j({"model": 5, "messages": MSG}), 400),
    ("model a list", CHAT, _j({"model": ["chat"], "messages": MSG}), 400),
    ("model empty", CHAT, _j({"model": "", "messages": MSG}), 400),
    ("messages a string", CHAT, _j({"model": "chat", "messages": "hi"}), 400),
    ("messages empty", CHAT, _j({"model": "chat", "messages": []}), 400),
    ("messages missing", CHAT, _j({"model": "chat"}), 400),
    ("stream a string", CHAT, _j({"model": "chat", "messages": MSG, "stream": "yes"}), 400),
    ("stream a number", CHAT, _j({"model": "chat", "messages": MSG, "stream": 1}), 400),
    ("n zero", CHAT, _j({"model": "chat", "messages": MSG, "n": 0}), 400),
    ("n negative", CHAT, _j({"model": "chat", "messages": MSG, "n": -3}), 400),
    ("n a float", CHAT, _j({"model": "chat", "messages": MSG, "n": 1.5}), 400),
    ("n a bool", CHAT, _j({"model": "chat", "messages": MSG, "n": True}), 400),
    ("n a string", CHAT, _j({"model": "chat", "messages": MSG, "n": "2"}), 400),
    ("unknown model", CHAT, _j({"model": "nope", "messages": MSG}), 404),
    ("other namespace unknown", CHAT, _j({"model": "team-x/chat", "messages": MSG}), 404),
    ("model with odd characters", CHAT, _j({"model": "../../etc/passwd", "messages": MSG}), 404),
    ("model huge", CHAT, _j({"model": "m" * 50_000, "messages": MSG}), 404),
    ("wrong task", "/v1/embeddings", _j({"model": "chat", "input": "x"}), 400),
    ("streamed embeddings", "/v1/embeddings", _j({"model": "embed", "input": "x",
                                                   "stream": True}), 400),
    ("completions without prompt", "/v1/completions", _j({"model": "chat"}), 400),
    ("body over the limit", CHAT, _j({"model": "chat", "messages": [
        {"role": "user", "content": "x" * (LIMIT + 1)}]}), 413),
    ("embeddings over the limit", "/v1/embeddings", b'{"input": "' + b"x" * LIMIT + b'"}', 413),
    ("mlflow not json", "/endpoints/chat/invocations", b"{{", 400),
    ("mlflow unknown", "/endpoints/nope/invocations", _j({"messages": MSG}), 404),
    ("mlflow over the limit", "/gateway/chat/mlflow/invocations", b"x" * (LIMIT + 10), 413),
    ("unknown route", "/v1/chat/completion", _j({"model": "chat", "messages": MSG}), 404),
    ("path traversal", "/v1/../admin", b"{}", 404),
]


@pytest.mark.parametrize(("path", "data", "status"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
async def test_bad_request_gets_a_clear_error(gateway: Gateway, fake: FakeOpenAI, path: str,
                                              data: bytes, status: int) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            gateway.url + path, data=data,
            headers={"content-type": "application/json"}) as resp:
        raw = await resp.read()
        assert resp.status == status, raw[:300]
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.headers["x-request-id"]
    error = orjson.loads(raw)["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == "invalid_request_error"
    assert "Traceback" not in error["message"] and "File \"" not in error["message"]
    assert len(raw) < 2000  # never echoes a huge body back
    assert not fake.requests  # nothing reached the provider


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_methods_are_405_json(gateway: Gateway, method: str) -> None:
    async with aiohttp.ClientSession() as http, http.request(
            method, gateway.url + CHAT) as resp:
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_odd_request_ids_are_replaced(gateway: Gateway, fake: FakeOpenAI) -> None:
    async with aiohttp.ClientSession() as http:
        for given in ("a" * 500, "has space", "new\\nline", "<script>"):
            async with http.post(gateway.url + CHAT, json={"model": "chat", "messages": MSG},
                                 headers={"x-request-id": given}) as resp:
                assert resp.status == 200
                assert resp.headers["x-request-id"] != given
                assert fake.requests[-1].headers["x-request-id"] == resp.headers["x-request-id"]


async def test_still_serves_after_the_barrage(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        for _, path, data, _status in CASES:
            async with http.post(gateway.url + path, data=data) as resp:
                await resp.read()
        async with http.post(gateway.url + CHAT, json={"model": "chat", "messages": MSG}) as resp:
            assert resp.status == 200
