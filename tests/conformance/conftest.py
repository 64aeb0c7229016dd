"""A primary and a fallback fake, and a gateway over them, for the fault conformance tests.

The endpoint `chat` splits 100% to `primary` (model `primary-model`) and falls back to
`fallback` (model `fallback-model`), under the scaled policy of `faults.POLICY`. Clients
are the official openai SDK with its own retries off, so every attempt seen in a fake's
log is the gateway's conduct.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from tests.conformance.faults import POLICY, LongFake
from tests.integration.gateway.kit import Gateway, endpoint, openai_target, running_gateway

KEYS = {"P_KEY": "sk-primary-conformance-1111", "F_KEY": "sk-fallback-conformance-2222"}


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[LongFake, LongFake]]:
    async with (
        await LongFake.start(name="primary", expected_key=KEYS["P_KEY"]) as primary,
        await LongFake.start(name="fallback", expected_key=KEYS["F_KEY"]) as fallback,
    ):
        yield primary, fallback


def chat_endpoint(primary: LongFake, fallback: LongFake, *,
                  policy: dict[str, Any] | None = None,
                  windows: tuple[int | None, int | None] = (None, None)) -> dict[str, Any]:
    """The `chat` endpoint; `policy` entries replace `POLICY`'s, `windows` are the
    targets' declared context windows."""
    split = openai_target("primary", primary.base_url, "P_KEY", "primary-model", weight=100)
    fb = openai_target("fallback", fallback.base_url, "F_KEY", "fallback-model")
    for target, window in zip((split, fb), windows, strict=True):
        if window is not None:
            target["contextWindow"] = window
    return endpoint("chat", [split], [fb], policy={**POLICY, **(policy or {})})


@contextlib.asynccontextmanager
async def gateway_for(tmp_path: pathlib.Path, doc: dict[str, Any]) -> AsyncIterator[Gateway]:
    """A gateway serving `doc`, with the access log on the `switchyard.access` logger."""
    async with running_gateway(tmp_path / "cfg", [doc], KEYS, access_log="logging") as gw:
        yield gw


@pytest.fixture
async def gateway(tmp_path: pathlib.Path,
                  fakes: tuple[LongFake, LongFake]) -> AsyncIterator[Gateway]:
    async with gateway_for(tmp_path, chat_endpoint(*fakes)) as gw:
        yield gw


def client(gw: Gateway) -> openai.AsyncOpenAI:
    """The official SDK, its own retries off (the gateway's conduct is under test)."""
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0,
                              timeout=30.0)
