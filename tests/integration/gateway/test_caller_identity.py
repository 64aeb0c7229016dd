"""`--auth kubernetes` through the real app: 401/403 shapes, no existence leak, filtered
listings, the per-namespace count, and a misbehaving API server (hangs, 5xx, a server that
ignores the audience), over a loopback stand-in for the TokenReview and SubjectAccessReview
APIs and the real `switchyard_kube` client. The real kube-apiserver: tests/e2e/
test_caller_identity.py."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from switchyard_gateway.genai_metrics import GenAIMeters
from switchyard_gateway.identity import Guard, GuardSettings, KubeReviewer, ReviewUnavailable
from switchyard_gateway.telemetry import Telemetry
from switchyard_kube import client as kube
from switchyard_testing import stack
from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

KEY = "sk-provider-identity-5e5e"
A_TOKEN, B_TOKEN, USER_TOKEN = "tok.team-a.app", "tok.team-b.app", "tok.human"
USERS = {A_TOKEN: "system:serviceaccount:team-a:app",
         B_TOKEN: "system:serviceaccount:team-b:app", USER_TOKEN: "alice"}
FILE_TOKEN = "gateway-wide-token-1234"


class FakeApiServer:
    """TokenReview and SubjectAccessReview on loopback; `mode` makes it misbehave."""

    def __init__(self) -> None:
        self.grants = {("system:serviceaccount:team-a:app", "team-a", "chat"),
                       ("system:serviceaccount:team-a:app", "team-a", "embed"),
                       ("system:serviceaccount:team-b:app", "team-b", "chat"),
                       ("alice", "team-a", "missing")}
        self.mode = "ok"  # "hang", "error", "no-audiences"
        self.reviews: list[dict[str, Any]] = []
        self.in_flight = self.most_in_flight = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _token_review(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.reviews.append(body)
        if self.mode == "hang":
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(60)
            finally:
                self.in_flight -= 1
        if self.mode == "error":
            return web.json_response({"reason": "InternalError"}, status=500)
        user = USERS.get(body["spec"]["token"])
        status: dict[str, Any] = {"authenticated": user is not None}
        if user is not None:
            status["user"] = {"username": user, "uid": "u-" + user, "groups": [
                "system:authenticated"]}
            if self.mode != "no-audiences":
                status["audiences"] = body["spec"]["audiences"]
        return web.json_response({**body, "status": status}, status=201)

    async def _access_review(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.reviews.append(body)
        if self.mode == "hang":
            await asyncio.sleep(60)
        if self.mode == "error":
            return web.json_response({}, status=503)
        spec = body["spec"]
        attrs = spec["resourceAttributes"]
        allowed = (attrs["verb"] == "use" and attrs["group"] == "switchyard.dev"
                   and attrs["resource"] == "gatewayendpoints"
                   and (spec["user"], attrs["namespace"], attrs["name"]) in self.grants)
        return web.json_response({**body, "status": {"allowed": allowed}}, status=201)

    async def start(self) -> FakeApiServer:
        app = web.Application()
        app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", self._token_review)
        app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                            self._access_review)
        # Handler cancellation: a review the gateway gave up on stops counting as in flight.
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def apiserver() -> AsyncIterator[FakeApiServer]:
    server = await FakeApiServer().start()
    yield server
    await server.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="primary", expected_key=KEY) as f:
        yield f


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, fake: FakeOpenAI,
                  apiserver: FakeApiServer) -> AsyncIterator[Gateway]:
    tokens = tmp_path / "tokens"
    tokens.write_text(FILE_TOKEN + "\n")
    target = openai_target("gpt", fake.base_url, "P_KEY", weight=100)
    docs = [endpoint("chat", [target], namespace="team-a"),
            endpoint("embed", [target], namespace="team-a", task="embeddings"),
            endpoint("chat", [target], namespace="team-b"),
            endpoint("private", [target], namespace="team-b")]
    async with kube.Client(kube.Connection(server=apiserver.url)) as client:
        guard = Guard(KubeReviewer(client, "switchyard", timeout=0.5),
                      GuardSettings(stale_access=0.0))
        async with running_gateway(tmp_path / "cfg", docs, {"P_KEY": KEY}, guard=guard,
                                   auth_kubernetes=True, auth_tokens_file=str(tokens),
                                   default_namespace="team-a") as gw:
            yield gw


def sdk(gw: Gateway, token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=token, max_retries=0)


async def post(gw: Gateway, path: str, token: str | None, body: dict[str, Any],
               ) -> tuple[int, Mapping[str, str], dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.post(
            gw.url + path, json=body, headers=headers) as resp:
        return resp.status, resp.headers.copy(), await resp.json()


CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def test_bound_service_account_is_served_with_the_sdk(gateway: Gateway,
                                                            fake: FakeOpenAI) -> None:
    async with sdk(gateway, A_TOKEN) as client:
        reply = await client.chat.completions.create(model="chat", **CHAT)  # type: ignore[call-overload]
    assert reply.choices[0].message.content
    sent = fake.requests[-1]
    assert A_TOKEN not in str(sent)  # the caller's token never goes upstream


@pytest.mark.parametrize("model", ["team-b/chat", "team-b/private", "team-b/no-such",
                                   "no-such", "team-c/chat"])
async def test_forbidden_is_the_same_whether_or_not_the_endpoint_exists(
        gateway: Gateway, fake: FakeOpenAI, model: str) -> None:
    status, headers, body = await post(gateway, "/v1/chat/completions", A_TOKEN,
                                       {"model": model, **CHAT})
    assert status == 403
    assert headers["x-should-retry"] == "false"
    assert body["error"]["type"] == "permission_error"
    assert body["error"]["code"] == "permission_denied"
    assert body["error"]["message"] == (
        f"this caller may not use endpoint {model!r} (it needs 'use' on "
        "gatewayendpoints.switchyard.dev in the endpoint's namespace), or no such "
        "endpoint exists")
    assert "x-switchyard-endpoint" not in headers
    assert not fake.requests


async def test_a_caller_allowed_a_missing_name_learns_it_is_missing(gateway: Gateway) -> None:
    status, _, body = await post(gateway, "/v1/chat/completions", USER_TOKEN,
                                 {"model": "missing", **CHAT})
    assert (status, body["error"]["code"]) == (404, "model_not_found")


@pytest.mark.parametrize("token", [None, "not-a-known-token", "a b", "x" * 8160])
async def test_unauthenticated_is_401_without_retry(gateway: Gateway, token: str | None) -> None:
    status, headers, body = await post(gateway, "/v1/chat/completions", token,
                                       {"model": "chat", **CHAT})
    assert status == 401
    assert headers["x-should-retry"] == "false"
    assert body["error"]["type"] == "authentication_error"
    assert token is None or token not in str(body)


async def test_listings_show_only_usable_endpoints(gateway: Gateway) -> None:
    async with sdk(gateway, A_TOKEN) as client:
        models = [m.id async for m in client.models.list()]
    assert models == ["chat", "embed"]
    async with sdk(gateway, B_TOKEN) as client:
        assert [m.id async for m in client.models.list()] == ["team-b/chat"]
        with pytest.raises(openai.PermissionDeniedError):
            await client.models.retrieve("team-b/private")
        assert (await client.models.retrieve("team-b/chat")).id == "team-b/chat"
    headers = {"Authorization": f"Bearer {B_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(gateway.url + "/api/2.0/endpoints/") as resp:
            names = [e["name"] for e in (await resp.json())["endpoints"]]
        assert names == ["team-b/chat"]
        for path in ("/api/2.0/endpoints/team-a%2Fchat", "/api/2.0/endpoints/team-b/private"):
            async with http.get(gateway.url + path) as resp:
                assert resp.status == 403, path
        async with http.post(gateway.url + "/endpoints/team-a/chat/invocations",
                             json=CHAT) as resp:
            assert resp.status == 403


async def test_a_tokens_file_token_still_reaches_every_endpoint(gateway: Gateway) -> None:
    async with sdk(gateway, FILE_TOKEN) as client:
        assert len([m async for m in client.models.list()]) == 4
        reply = await client.chat.completions.create(model="team-b/private", **CHAT)  # type: ignore[call-overload]
    assert reply.choices[0].message.content


async def test_requests_are_counted_by_caller_namespace(gateway: Gateway) -> None:
    await post(gateway, "/v1/chat/completions", A_TOKEN, {"model": "chat", **CHAT})
    await post(gateway, "/v1/chat/completions", B_TOKEN, {"model": "chat", **CHAT})
    await post(gateway, "/v1/chat/completions", "nope", {"model": "chat", **CHAT})
    await post(gateway, "/v1/chat/completions", USER_TOKEN, {"model": "chat", **CHAT})
    async with aiohttp.ClientSession() as http, http.get(gateway.admin_url + "/metrics") as r:
        text = await r.text()
    count = stack.metric_value
    name = "switchyard_caller_requests_total"
    assert count(text, name, caller_namespace="team-a", endpoint="team-a/chat",
                 status="200") == 1
    assert count(text, name, caller_namespace="team-b", status="403") == 1
    assert count(text, name, caller_namespace="none", status="401") == 1
    assert count(text, name, caller_namespace="other", status="403") == 1
    assert "tok." not in text


async def test_reviews_carry_the_audience_and_the_rbac_attributes(
        gateway: Gateway, apiserver: FakeApiServer) -> None:
    await post(gateway, "/v1/chat/completions", A_TOKEN, {"model": "team-b/chat", **CHAT})
    token_review, access_review = apiserver.reviews
    assert token_review["spec"]["audiences"] == ["switchyard"]
    assert access_review["spec"]["user"] == USERS[A_TOKEN]
    assert access_review["spec"]["uid"] == "u-" + USERS[A_TOKEN]
    assert access_review["spec"]["resourceAttributes"] == {
        "namespace": "team-b", "verb": "use", "group": "switchyard.dev",
        "resource": "gatewayendpoints", "name": "chat"}


async def test_a_server_that_ignores_the_audience_is_not_trusted(
        gateway: Gateway, apiserver: FakeApiServer) -> None:
    apiserver.mode = "no-audiences"
    status, _, body = await post(gateway, "/v1/chat/completions", A_TOKEN,
                                 {"model": "chat", **CHAT})
    assert status == 401
    assert "audience" in body["error"]["message"]


@pytest.mark.parametrize("mode", ["hang", "error"])
async def test_unreachable_api_server_fails_closed_with_503_for_new_callers(
        gateway: Gateway, apiserver: FakeApiServer, fake: FakeOpenAI, mode: str) -> None:
    status, _, _ = await post(gateway, "/v1/chat/completions", A_TOKEN,
                              {"model": "chat", **CHAT})
    assert status == 200
    apiserver.mode = mode
    started = asyncio.get_running_loop().time()
    status, headers, body = await post(gateway, "/v1/chat/completions", B_TOKEN,
                                       {"model": "team-b/chat", **CHAT})
    assert status == 503
    assert int(headers["retry-after"]) >= 1
    assert body["error"]["code"] == "auth_unavailable"
    assert asyncio.get_running_loop().time() - started < 5  # the review timeout, not 60 s
    # The cached caller is still served (its decision is fresh for the access TTL).
    status, _, _ = await post(gateway, "/v1/chat/completions", A_TOKEN,
                              {"model": "chat", **CHAT})
    assert status == 200


async def test_reviews_in_flight_are_bounded_against_a_hanging_api_server(
        apiserver: FakeApiServer) -> None:
    apiserver.mode = "hang"
    async with kube.Client(kube.Connection(server=apiserver.url)) as client:
        guard = Guard(KubeReviewer(client, "switchyard", timeout=0.3),
                      GuardSettings(max_concurrent_reviews=4))
        tokens = [f"tok.flood.{i}" for i in range(12)]  # distinct: no single flight
        results = await asyncio.gather(*(guard.authenticate(t) for t in tokens),
                                       return_exceptions=True)
    assert all(isinstance(r, ReviewUnavailable) for r in results), results
    assert apiserver.most_in_flight == 4
    assert guard.sent["token"] == 12


async def test_token_usage_cost_and_spans_carry_the_caller_namespace(
        tmp_path: pathlib.Path, fake: FakeOpenAI, apiserver: FakeApiServer) -> None:
    """Chargeback by team: the token and cost metrics (Prometheus and OTLP) and the server
    span carry the caller's namespace, never its ServiceAccount name or token."""
    prices = tmp_path / "prices.json"
    prices.write_text('{"gpt": {"input": 1.0, "output": 2.0}}')
    spans = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    docs = [endpoint("chat", [openai_target("gpt", fake.base_url, "P_KEY", weight=100)],
                     namespace=ns) for ns in ("team-a", "team-b")]
    async with kube.Client(kube.Connection(server=apiserver.url)) as client:
        guard = Guard(KubeReviewer(client, "switchyard", timeout=0.5),
                      GuardSettings(stale_access=0.0))
        async with running_gateway(tmp_path / "cfg", docs, {"P_KEY": KEY}, guard=guard,
                                   auth_kubernetes=True, default_namespace="team-a",
                                   prices_file=str(prices), telemetry=Telemetry(tracer),
                                   meters=GenAIMeters(reader)) as gw:
            replies = []
            for token, model in ((A_TOKEN, "chat"), (A_TOKEN, "chat"), (B_TOKEN, "team-b/chat")):
                async with sdk(gw, token) as c:
                    replies.append(await c.chat.completions.create(model=model, **CHAT))  # type: ignore[call-overload]
            async with aiohttp.ClientSession() as http, http.get(gw.admin_url + "/metrics") as r:
                text = await r.text()
    usage = replies[0].usage
    assert usage is not None
    count = stack.metric_value
    for ns, n in (("team-a", 2), ("team-b", 1)):
        assert count(text, "gen_ai_client_token_usage_sum", caller_namespace=ns,
                     token_type="input", endpoint=f"{ns}/chat") == n * usage.prompt_tokens
        assert count(text, "switchyard_cost_usd_total", caller_namespace=ns) == pytest.approx(
            n * (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6)
    assert "serviceaccount" not in text and "tok." not in text

    servers = [dict(s.attributes or {}) for s in spans.get_finished_spans()
               if s.kind is SpanKind.SERVER]
    assert [s["switchyard.caller.namespace"] for s in servers] == ["team-a", "team-a", "team-b"]
    assert all("serviceaccount" not in str(s) and "tok." not in str(s) for s in servers)

    data = reader.get_metrics_data()
    assert data is not None
    points = [(dict(p.attributes or {}), p) for rm in data.resource_metrics
              for sm in rm.scope_metrics for m in sm.metrics
              if m.name == "gen_ai.client.token.usage" for p in m.data.data_points]
    by_caller = {(a["switchyard.caller.namespace"], a["gen_ai.token.type"]): p.sum
                 for a, p in points}
    assert by_caller == {("team-a", "input"): 2 * usage.prompt_tokens,
                         ("team-a", "output"): 2 * usage.completion_tokens,
                         ("team-b", "input"): usage.prompt_tokens,
                         ("team-b", "output"): usage.completion_tokens}
