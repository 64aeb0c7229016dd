"""A hostile or broken upstream echoes the gateway's key back: nothing of it may reach the
caller, the access log or any log line. Played by a loopback server that puts the key
just past the 300-character cut of its error message (the old code cut first, then looked
for the whole key: 31 of 32 characters went out), in its error type, and in a response
header the transport refuses (`Content-Encoding`), whose error text quotes the value."""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import AsyncIterator

import openai
import orjson
import pytest
from aiohttp import web

from switchyard_gateway import redaction
from tests.integration.gateway.kit import endpoint, openai_target, running_gateway
from tests.integration.gateway.test_routing import MESSAGES

KEY = "sk-proj-Q7vN2xW9kLm4Pz8RtY6bHc3JdF5gA1sE"
ENV = {"ECHO_KEY": KEY}


def _leaks(text: str) -> list[str]:
    pieces = {KEY[i:i + redaction.PIECE] for i in range(len(KEY) - redaction.PIECE + 1)}
    return sorted(p for p in pieces if p in text)


async def _echo(request: web.Request) -> web.StreamResponse:
    """Echo the bearer key the way the request's `user` field asks."""
    body = await request.json()
    key = request.headers["Authorization"].removeprefix("Bearer ")
    how, _, pad = str(body.get("user", "")).partition(":")
    if how == "message":  # a 400 whose message holds the key after `pad` characters
        error = {"message": "x" * int(pad) + key + " is not a valid key",
                 "type": "invalid_request_error", "code": None}
        return web.json_response({"error": error}, status=400)
    if how == "type":  # a 500 whose error type is the key
        return web.json_response({"error": {"message": "no", "type": key}}, status=500)
    if how == "stream":  # content, then an in-band error whose type is part of the key
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"},
                              "finish_reason": None}]}
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await asyncio.sleep(0.05)  # after the gateway committed to this stream
        error = {"error": {"message": key, "type": "x" * int(pad) + key[:24]}}
        await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
        return response
    # A 200 with a Content-Encoding the transport does not speak: the key.
    return web.Response(body=b"{}", headers={"Content-Type": "application/json",
                                             "Content-Encoding": key})


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


async def test_key_echoed_past_the_cut_in_an_error_body_or_a_header_never_leaks(
        tmp_path: pathlib.Path, echo_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    doc = endpoint("chat", [openai_target("echo", echo_url, "ECHO_KEY", weight=100)],
                   policy={"cooldown": {"enabled": False}})
    seen: list[str] = []
    async with (running_gateway(tmp_path / "cfg", [doc], ENV) as gw,
                openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="caller",
                                   max_retries=0) as client):
        # Every placement around the cut, whatever the length of the gateway's prefix.
        users = [f"message:{pad}" for pad in range(200, 330)] + ["type:", "header:"]
        for user in users:
            with pytest.raises(openai.APIStatusError) as info:
                await client.chat.completions.create(model="chat", messages=MESSAGES,
                                                     user=user)
            seen.append(info.value.response.text)
    assert _leaks("\n".join(seen[:-2])) == []  # the error body, key around the cut
    assert _leaks("\n".join(seen[-2:])) == []  # the error type; the header
    header_case = orjson.loads(seen[-1])["error"]["attempts"][0]
    assert header_case["outcome"] == "serverError"
    # The transport names the problem without quoting the header's value at all (and the
    # router would scrub it if it did: tests/unit/test_redaction.py).
    assert "unsupported content-encoding" in header_case["message"]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert _leaks(logged) == []
    assert "switchyard.access" in {r.name for r in caplog.records}


async def test_key_echoed_in_an_error_event_mid_stream_never_leaks(
        tmp_path: pathlib.Path, echo_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    doc = endpoint("chat", [openai_target("echo", echo_url, "ECHO_KEY", weight=100)])
    seen: list[str] = []
    async with (running_gateway(tmp_path / "cfg", [doc], ENV) as gw,
                openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="caller",
                                   max_retries=0) as client):
        for pad in (0, 250, 270, 290):
            with pytest.raises(openai.APIError) as info:
                stream = await client.chat.completions.create(
                    model="chat", messages=MESSAGES, stream=True, user=f"stream:{pad}")
                async for chunk in stream:
                    seen.append(chunk.model_dump_json())
            seen.append(f"{info.value} {info.value.body}")
    assert any("[REDACTED]" in s for s in seen)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert _leaks("\n".join(seen)) == []
    assert _leaks(logged) == []
