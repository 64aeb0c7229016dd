"""MLflow's deployments client works unchanged; no key value leaks anywhere."""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from mlflow.deployments import get_deploy_client

from switchyard_testing.fakes import FakeOpenAI, Fault
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

KEYS = {"P_KEY": "sk-leakcheck-primary-7a7a7a", "F_KEY": "sk-leakcheck-fallback-8b8b8b"}
SECRET_VALUE = "sk-leakcheck-secret-9c9c9c"


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI]]:
    async with (
        await FakeOpenAI.start(name="primary", expected_key=KEYS["P_KEY"]) as p,
        await FakeOpenAI.start(name="fb", expected_key=SECRET_VALUE) as f,
    ):
        yield p, f


@pytest.fixture
async def gateway(tmp_path: pathlib.Path,
                  fakes: tuple[FakeOpenAI, FakeOpenAI]) -> AsyncIterator[Gateway]:
    p, f = fakes
    fb = openai_target("fb", f.base_url, None)
    fb["apiKey"] = {"secretKeyRef": {"name": "fb-key", "key": "api-key"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fb-key"},
              "stringData": {"api-key": SECRET_VALUE}}
    docs = [
        endpoint("chat", [openai_target("primary", p.base_url, "P_KEY", weight=100)], [fb]),
        endpoint("embed", [openai_target("emb", p.base_url, "P_KEY", weight=100)],
                 namespace="team-a", task="embeddings"),
        secret,
    ]
    async with running_gateway(tmp_path / "cfg", docs, KEYS) as gw:
        yield gw


async def test_mlflow_deployments_client(gateway: Gateway) -> None:
    def use() -> tuple[list[str], str, str, int]:
        client = get_deploy_client(gateway.url)
        names = [e.name for e in client.list_endpoints()]
        chat = client.get_endpoint("chat")
        answer = client.predict(endpoint="chat",
                                inputs={"messages": [{"role": "user", "content": "hi"}]})
        vectors = client.predict(endpoint="team-a/embed", inputs={"input": ["a", "b"]})
        return names, chat.endpoint_type, answer["choices"][0]["message"]["content"], \
            len(vectors["data"])

    names, kind, text, count = await asyncio.to_thread(use)
    assert names == ["chat", "team-a/embed"]
    assert kind == "llm/v1/chat"
    assert text == "Hello from primary (primary)."
    assert count == 2


async def test_mlflow3_gateway_paths_and_encoded_names(gateway: Gateway) -> None:
    messages = [{"role": "user", "content": "hi"}]
    async with aiohttp.ClientSession() as http:
        async with http.post(gateway.url + "/gateway/chat/mlflow/invocations",
                             json={"messages": messages}) as resp:
            assert resp.status == 200
            assert resp.headers["x-switchyard-endpoint"] == "default/chat"
        async with http.post(gateway.url + "/gateway/mlflow/v1/chat/completions",
                             json={"model": "chat", "messages": messages}) as resp:
            assert resp.status == 200
        async with http.get(gateway.url + "/api/2.0/endpoints/team-a%2Fembed") as resp:
            assert (await resp.json())["name"] == "team-a/embed"
        async with http.post(gateway.url + "/endpoints/team-a%2Fembed/invocations",
                             json={"input": "x"}) as resp:
            assert resp.status == 200
        async with http.get(gateway.url + "/api/2.0/endpoints/missing") as resp:
            assert resp.status == 404


async def test_secret_key_is_used_and_no_key_value_leaks(
        gateway: Gateway, fakes: tuple[FakeOpenAI, FakeOpenAI],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    p, f = fakes
    p.script.push(Fault.UNAUTHORIZED)  # primary key "revoked": falls back to the Secret key
    bodies: list[str] = []
    chat = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(gateway.url + "/v1/chat/completions", json=chat) as resp:
            assert resp.status == 200
            assert resp.headers["x-switchyard-target"] == "fb"
            bodies.append(await resp.text())
        assert f.requests[-1].headers["Authorization"] == f"Bearer {SECRET_VALUE}"
        p.script.push(Fault.UNAUTHORIZED)
        f.script.push(Fault.UNAUTHORIZED)
        async with http.post(gateway.url + "/v1/chat/completions", json=chat) as resp:
            assert resp.status == 502  # never the provider's 401
            bodies.append(await resp.text())
            bodies.append(str(dict(resp.headers)))
        async with http.post(gateway.url + "/v1/chat/completions",
                             json={**chat, "stream": True}) as resp:
            bodies.append(await resp.text())
        async with http.get(gateway.admin_url + "/metrics") as resp:
            bodies.append(await resp.text())
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    captured = "\n".join(bodies) + logged
    for value in (*KEYS.values(), SECRET_VALUE):
        assert value not in captured
    assert "switchyard.access" in {r.name for r in caplog.records}
