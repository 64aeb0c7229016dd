"""Config churn under load: 100 versions of an endpoint applied while requests flow.

Each version routes to its own target names and upstream models (`a-<v>`/`m-<v>-a`,
`b-<v>`/`m-<v>-b` split by a random weight, fallback `fb-<v>`/`m-<v>-fb`), and the primary
fake fails 10% of requests so fallbacks are used too. Every response must be a success
whose serving target and the model the fake actually saw belong to the same version (no
half-applied config), and that version must have been live during the request.
"""

from __future__ import annotations

import asyncio
import pathlib
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from switchyard_testing.fakes import FakeOpenAI, Fault, Script
from tests.integration.gateway.kit import (
    Gateway,
    endpoint,
    openai_target,
    running_gateway,
    wait_for,
)

pytestmark = pytest.mark.slow

KEYS = {"A_KEY": "sk-churn-a-1", "B_KEY": "sk-churn-b-2", "C_KEY": "sk-churn-c-3"}
VERSIONS = 100
REQUESTS = 2000
PER_VERSION = REQUESTS // (VERSIONS + 1)
TARGET = re.compile(r"^(a|b|fb)-(\d+)$")


def manifest(version: int, fakes: dict[str, FakeOpenAI], rng: random.Random) -> dict[str, Any]:
    """Version `version` of the churned endpoint."""
    weight = rng.randint(1, 99)
    split = [openai_target(f"a-{version}", fakes["a"].base_url, "A_KEY",
                           model=f"m-{version}-a", weight=weight),
             openai_target(f"b-{version}", fakes["b"].base_url, "B_KEY",
                           model=f"m-{version}-b", weight=100 - weight)]
    fallbacks = [openai_target(f"fb-{version}", fakes["fb"].base_url, "C_KEY",
                               model=f"m-{version}-fb")]
    return endpoint("chat", split, fallbacks, policy={"cooldown": {"enabled": False}})


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeOpenAI]]:
    flaky = Script({Fault.SERVER_ERROR: 0.1}, seed=3)
    async with await FakeOpenAI.start(name="A", script=flaky, expected_key=KEYS["A_KEY"]) as a, \
            await FakeOpenAI.start(name="B", expected_key=KEYS["B_KEY"]) as b, \
            await FakeOpenAI.start(name="FB", expected_key=KEYS["C_KEY"]) as fb:
        yield {"a": a, "b": b, "fb": fb}


class Versions:
    """Which config versions may be live: `applied` is done, `applying` may be."""

    def __init__(self) -> None:
        self.applied = 0
        self.applying = 0


async def _request(http: aiohttp.ClientSession, gw: Gateway, stream: bool) -> tuple[int, str, str]:
    """(status, serving target, reply text)."""
    body = {"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "x"}]}
    async with http.post(gw.url + "/v1/chat/completions", json=body) as resp:
        target = resp.headers.get("x-switchyard-target", "")
        if not stream:
            data = orjson.loads(await resp.read())
            text = data["choices"][0]["message"]["content"] if resp.status == 200 else str(data)
            return resp.status, target, text
        parts: list[str] = []
        done = False
        async for line in resp.content:
            payload = line.removeprefix(b"data: ").strip()
            if not line.startswith(b"data: "):
                continue
            if payload == b"[DONE]":
                done = True
                continue
            chunk = orjson.loads(payload)
            parts.extend(c["delta"].get("content") or "" for c in chunk.get("choices", []))
        return (resp.status if done else -1), target, "".join(parts)


async def test_churn_under_load(tmp_path: pathlib.Path, fakes: dict[str, FakeOpenAI]) -> None:
    rng = random.Random(5)
    versions = Versions()
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    completed = 0
    async with running_gateway(tmp_path / "cfg", [manifest(0, fakes, rng)], KEYS) as gw, \
            aiohttp.ClientSession() as http:

        async def worker(index: int) -> None:
            nonlocal completed
            for n in range(index, REQUESTS, 20):
                low = versions.applied
                status, target, text = await _request(http, gw, stream=n % 2 == 0)
                high = versions.applying
                completed += 1
                match = TARGET.match(target)
                if status != 200 or match is None:
                    problems.append(f"status {status} target {target!r}: {text[:200]}")
                    continue
                role, version = match.group(1), int(match.group(2))
                outcomes[role] += 1
                if f"(m-{version}-{role})" not in text:
                    problems.append(f"half-applied: target {target} answered {text!r}")
                if not low <= version <= high:
                    problems.append(f"version {version} outside live range {low}..{high}")

        async def churn() -> None:
            for version in range(1, VERSIONS + 1):
                await wait_for(lambda v=version: completed >= v * PER_VERSION, 120.0)
                versions.applying = version
                gw.write(manifest(version, fakes, rng))
                assert await gw.reload()
                versions.applied = version

        async with asyncio.timeout(240):  # a hang guard for the whole run
            await asyncio.gather(churn(), *(worker(i) for i in range(20)))
        async with http.get(gw.admin_url + "/metrics") as resp:
            metrics = await resp.text()
    assert problems == []
    assert completed == REQUESTS
    assert versions.applied == VERSIONS
    assert outcomes["a"] and outcomes["b"] and outcomes["fb"], outcomes
    applied = [line for line in metrics.splitlines()
               if line.startswith('switchyard_config_changes_total{endpoint="default/chat"'
                                  ',kind="applied"}')]
    assert applied and float(applied[0].rsplit(" ", 1)[1]) >= VERSIONS
