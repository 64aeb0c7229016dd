"""The batched access-log sink: whole JSON lines, flushed by size, by timer and at close."""

from __future__ import annotations

import asyncio
import os

import orjson

from switchyard_gateway import errors, metrics
from switchyard_gateway.providers.base import Usage
from switchyard_gateway.routing.router import RequestTrace


def _trace(request_id: str = "r-1") -> RequestTrace:
    return RequestTrace(request_id, "default/chat", "a",
                        [errors.AttemptRecord("a", "ok", 200, 1.5, sent=True)],
                        Usage(12, 7), 0.0012, None, False)


def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def test_access_line_is_one_json_object_per_line() -> None:
    line = metrics.access_line(_trace(), method="POST", path="/v1/chat/completions",
                               status=200, seconds=0.0021)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    data = orjson.loads(line)
    assert data["request_id"] == "r-1" and data["endpoint"] == "default/chat"
    assert data["attempts"] == [{"target": "a", "outcome": "ok", "status": 200, "ms": 1.5,
                                 "sent": True}]
    assert data["duration_ms"] == 2.1 and data["prompt_tokens"] == 12


async def test_writer_batches_until_the_timer_then_writes_whole_lines() -> None:
    read, write = os.pipe()
    try:
        writer = metrics.AccessLogWriter(write, max_delay=0.02)
        for i in range(3):
            metrics.log_access(_trace(f"r-{i}"), method="POST", path="/p", status=200,
                               seconds=0.001, writer=writer)
        assert _read_all(read) == b""  # nothing written before the timer
        await asyncio.sleep(0.1)
        lines = _read_all(read).splitlines()
        assert [orjson.loads(x)["request_id"] for x in lines] == ["r-0", "r-1", "r-2"]
    finally:
        os.close(read)
        os.close(write)


async def test_writer_flushes_by_size_and_at_close() -> None:
    read, write = os.pipe()
    try:
        writer = metrics.AccessLogWriter(write, max_delay=60, max_bytes=1000)
        line = metrics.access_line(_trace(), method="POST", path="/p", status=200,
                                   seconds=0.001)
        count = 1000 // len(line) + 1
        for _ in range(count):
            writer.write(line)
        assert _read_all(read) == line * count  # over max_bytes: written at once
        writer.write(line)
        writer.close()
        assert _read_all(read) == line
    finally:
        os.close(read)
        os.close(write)


def test_access_line_says_the_outcome() -> None:
    trace = _trace()
    ok = orjson.loads(metrics.access_line(trace, method="POST", path="/v1/x", status=200,
                                          seconds=0.001))
    failed = orjson.loads(metrics.access_line(trace, method="POST", path="/v1/x", status=502,
                                              seconds=0.001))
    trace.client_closed = True
    closed = orjson.loads(metrics.access_line(trace, method="POST", path="/v1/x", status=499,
                                              seconds=0.001))
    assert (ok["outcome"], failed["outcome"], closed["outcome"]) == (
        "ok", "error", "client_closed")
