"""The deadline wheel behaves like `asyncio.timeout_at`."""

from __future__ import annotations

import asyncio

import pytest

from switchyard_gateway.routing.deadlines import Deadlines


async def test_expired_deadline_raises_timeout() -> None:
    wheel = Deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError), wheel.at(loop.time() + 0.05):
        await asyncio.sleep(5)
    assert 0.04 <= loop.time() - started < 1.0


async def test_past_deadline_fires_on_next_tick() -> None:
    wheel = Deadlines()
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError), wheel.at(loop.time() - 1):
        await asyncio.sleep(5)


async def test_block_done_in_time_leaves_nothing_pending() -> None:
    wheel = Deadlines()
    loop = asyncio.get_running_loop()
    for _ in range(3):
        with wheel.at(loop.time() + 0.05):
            await asyncio.sleep(0)
    await asyncio.sleep(0.1)  # the wheel's timer stops once nothing is pending
    assert wheel._count == 0 and not wheel._buckets and wheel._timer is None


async def test_outside_cancellation_passes_through() -> None:
    wheel = Deadlines()
    loop = asyncio.get_running_loop()

    async def body() -> None:
        with wheel.at(loop.time() + 10):
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wheel._count == 0


async def test_many_tasks_expire_independently() -> None:
    wheel = Deadlines()
    loop = asyncio.get_running_loop()

    async def body(seconds: float, sleep: float) -> str:
        try:
            with wheel.at(loop.time() + seconds):
                await asyncio.sleep(sleep)
        except TimeoutError:
            return "timeout"
        return "ok"

    results = await asyncio.gather(body(0.03, 1), body(1, 0.01), body(0.05, 1), body(1, 0.06))
    assert results == ["timeout", "ok", "timeout", "ok"]


async def test_idle_wheel_restarts_after_a_pause() -> None:
    wheel = Deadlines()
    loop = asyncio.get_running_loop()
    with wheel.at(loop.time() + 0.02):
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)
    with pytest.raises(TimeoutError), wheel.at(loop.time() + 0.02):
        await asyncio.sleep(1)
