"""`switchyard gateway --workers 2`: two processes on one port, metrics summed over both.

The gateway runs as a real process (as its container runs it) over a fake OpenAI
provider; the official `openai` SDK sends requests on fresh connections, which the kernel
spreads over the workers' SO_REUSEPORT sockets. Every request is answered, both workers
are alive, `/metrics` counts every request whichever worker answers the scrape, and
SIGTERM stops them all.
"""

from __future__ import annotations

import asyncio
import pathlib
from pathlib import Path

import openai
import yaml

from switchyard_testing import stack
from switchyard_testing.fakes import FakeOpenAI
from tests.integration.gateway.kit import endpoint, openai_target

KEY = "sk-workers-5151"
REQUESTS = 40


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


async def test_two_workers_share_the_port_and_the_metrics(tmp_path: pathlib.Path) -> None:
    async with await FakeOpenAI.start(name="p", expected_key=KEY) as fake:
        doc = endpoint("chat", [openai_target("gpt", fake.base_url, "P_KEY", weight=100)])
        (tmp_path / "endpoints.yaml").write_text(yaml.safe_dump_all([doc]))
        metrics_dir = tmp_path / "metrics"
        gw = stack.gateway(None, tmp_path, config=tmp_path / "endpoints.yaml",
                           extra=["--workers", "2"],
                           env={"P_KEY": KEY, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
        gw.start()
        try:
            await asyncio.to_thread(gw.wait_for, "/readyz", 60.0)
            popen = gw.process._popen
            assert popen is not None
            assert len(_children(popen.pid)) == 2

            async def one(i: int) -> str:
                async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused",
                                              max_retries=0) as client:
                    reply = await client.chat.completions.create(
                        model="chat", messages=[{"role": "user", "content": f"hi {i}"}])
                    return reply.choices[0].message.content or ""

            answers = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
            assert all(answers)
            for _ in range(4):  # whichever worker answers the scrape sums both
                _, body = await asyncio.to_thread(gw.admin_get, "/metrics")
                total = stack.metric_value(body.decode(), "switchyard_requests_total",
                                           endpoint="default/chat", status="200")
                assert total == REQUESTS
            # Both workers wrote their own samples (pid-named files).
            pids = {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
            assert len(pids) == 2
        finally:
            await asyncio.to_thread(gw.stop, 15.0)
        assert popen.returncode == 0
