"""The address policy on real connections: a `baseUrl` naming a cloud-metadata address,
or a host that resolves to one (now, or after a DNS rebinding), is never connected to.
The refusal is a `ConnectError` naming the host (an attempt failing as connectionError,
so the fallback serves), and it is counted. DNS is replaced by an injected resolver: no
/etc/hosts edits, no network."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from switchyard_gateway import errors
from switchyard_gateway.routing.attempts import map_transport_error
from switchyard_gateway.transport import AddressRefused, Client, ConnectError, Pool
from switchyard_testing import stack
from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import endpoint, openai_target, running_gateway
from tests.integration.transport.test_limits import Counts
from tests.integration.transport.wire import BODY, Server, answer, fixed


def info(address: str, port: int) -> tuple[Any, ...]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


class Resolver:
    """Answers each lookup with the next list of addresses (the last one repeats)."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[tuple[Any, ...]]:
        self.lookups.append(host)
        addresses = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [info(a, port) for a in addresses]


async def test_base_url_naming_169_254_169_254_is_refused() -> None:
    counts = Counts()
    pool = Pool(observer=counts, connect_timeout=30)
    try:
        with pytest.raises(AddressRefused) as caught:
            await pool.request("POST", "http://169.254.169.254/latest/meta-data/", {}, BODY)
    finally:
        pool.close()
    assert isinstance(caught.value, ConnectError)
    assert "169.254.169.254:80" in str(caught.value) and "metadata" in str(caught.value)
    assert counts.refused == 1
    mapped = map_transport_error(caught.value, "t")
    assert isinstance(mapped, errors.UpstreamConnectionError)
    assert "169.254.169.254" in mapped.message


async def test_host_that_resolves_to_a_link_local_address_is_refused() -> None:
    counts = Counts()
    resolver = Resolver(["169.254.169.254"])
    pool = Pool(observer=counts, resolver=resolver)
    try:
        with pytest.raises(AddressRefused,
                           match=r"metadata\.attacker\.test:80.*169\.254\.169\.254"):
            await pool.request("POST", "http://metadata.attacker.test/v1", {}, BODY)
    finally:
        pool.close()
    assert resolver.lookups == ["metadata.attacker.test"] and counts.refused == 1


async def test_dns_rebinding_to_the_metadata_address_is_caught_on_the_next_connection(
        ) -> None:
    # first lookup: loopback (the check passes, the request is served); the server closes
    # each connection, so the next request resolves again: now the metadata address
    server = await Server(fixed(answer(b"{}", b"Connection: close"))).start()
    resolver = Resolver(["127.0.0.1"], ["169.254.169.254"])
    pool = Pool(resolver=resolver)
    url = f"http://rebind.attacker.test:{server.port}/v1"
    try:
        response = await pool.request("POST", url, {}, BODY)
        assert await response.read() == b"{}"
        response.release()
        with pytest.raises(AddressRefused):
            await pool.request("POST", url, {}, BODY)
    finally:
        pool.close()
        await server.stop()
    assert len(server.requests) == 1


async def test_only_the_allowed_addresses_of_a_mixed_answer_are_tried() -> None:
    server = await Server(fixed(answer(b"{}"))).start()
    pool = Pool(resolver=Resolver(["fe80::1", "169.254.169.254", "127.0.0.1"]))
    try:
        response = await pool.request("POST", f"http://mixed.test:{server.port}/", {}, BODY)
        assert await response.read() == b"{}"
        response.release()
    finally:
        pool.close()
        await server.stop()


async def test_loopback_stays_allowed() -> None:
    server = await Server(fixed(answer(b"{}"))).start()
    pool = Pool()
    try:
        response = await pool.request("POST", server.url(), {}, BODY)
        assert response.status == 200
        response.release()
    finally:
        pool.close()
        await server.stop()


async def test_proxied_base_url_naming_a_metadata_address_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = await Server(fixed(answer(b"{}"))).start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    counts = Counts()
    client = Client(observer=counts)
    try:
        with pytest.raises(AddressRefused, match=r"169\.254\.169\.254"):
            await client.request("POST", "http://169.254.169.254/latest/meta-data/", {}, BODY)
    finally:
        await client.close()
        await proxy.stop()
    assert proxy.requests == [] and counts.refused == 1


async def test_gateway_target_naming_the_metadata_service_falls_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the whole gateway: the refused target is a connectionError attempt naming the host,
    # the fallback serves, and the refusal is counted in /metrics
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with await FakeOpenAI.start(name="fb", expected_key="sk-fb-1") as fake:
        doc = endpoint("chat", [openai_target("imds", "http://169.254.169.254/latest", "K",
                                              weight=100)],
                       fallbacks=[openai_target("fb", fake.base_url, "K")])
        async with running_gateway(tmp_path, [doc], {"K": "sk-fb-1"}) as gw, \
                aiohttp.ClientSession() as http:
            async with http.post(gw.url + "/v1/chat/completions", json={
                    "model": "chat", "messages": [{"role": "user", "content": "hi"}]}) as resp:
                assert resp.status == 200
                assert resp.headers["x-switchyard-target"] == "fb"
                assert resp.headers["x-switchyard-attempts"] == "2"
            async with http.get(gw.admin_url + "/metrics") as resp:
                text = await resp.text()
    assert stack.metric_value(text, "switchyard_upstream_addresses_refused_total") == 1
    assert stack.metric_value(text, "switchyard_attempts_total", target="imds",
                              outcome="connectionError") == 1
