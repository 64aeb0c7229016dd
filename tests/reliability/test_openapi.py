"""schemathesis against docs/openapi.yaml on a live gateway process with healthy fakes.

Bounded: a fixed seed and a few examples per operation. Checks: no 5xx (with healthy
providers none of the documented upstream-failure statuses may appear either), every
status and content type is one the description documents, and bodies match their schemas.
"""

from __future__ import annotations

import asyncio
import pathlib
import sys
from collections.abc import AsyncIterator

import pytest

from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import endpoint, openai_target
from tests.reliability.procs import gateway_process

pytest.importorskip("schemathesis")
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "openapi.yaml"
KEY = "sk-openapi-4d4d"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with await FakeOpenAI.start(name="p", expected_key=KEY) as f:
        yield f


async def test_gateway_conforms_to_its_openapi_description(tmp_path: pathlib.Path,
                                                           fake: FakeOpenAI) -> None:
    def target(name: str) -> dict[str, object]:
        return openai_target(name, fake.base_url, "P_KEY", weight=100)

    docs = [endpoint("chat", [target("gpt")]),
            endpoint("complete", [target("inst")], task="completions"),
            endpoint("embed", [target("emb")], task="embeddings")]
    async with gateway_process(tmp_path, docs, {"P_KEY": KEY}) as gw:
        st = pathlib.Path(sys.executable).with_name("st")
        proc = await asyncio.create_subprocess_exec(
            str(st), "run", str(SPEC), "--url", gw.url, "--checks", CHECKS,
            "--max-examples", "15", "--seed", "1", "--request-timeout", "20",
            "--phases", "examples,coverage,fuzzing",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path)  # schemathesis keeps its example database in the working folder
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]
    assert KEY not in report
