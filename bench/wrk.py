"""Closed-loop saturation with wrk: fixed connections, each sends its next POST at once.

`run` writes a small Lua script (method, body, headers), runs wrk pinned to the load core
and parses its summary. Throughput is wrk's requests/sec of 2xx answers; anything else is
counted so a system that answers errors fast cannot look fast.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bench import procs


@dataclasses.dataclass(frozen=True)
class WrkResult:
    """One wrk run."""

    requests: int
    errors: int  # non-2xx answers plus socket errors
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_second(self) -> float:
        """Successful requests per second."""
        return max(0, self.requests - self.errors) / self.seconds


def wrk_binary() -> str:
    """The wrk executable."""
    found = shutil.which("wrk")
    if found is None:
        raise FileNotFoundError("wrk is not installed (bench/run.sh installs it)")
    return found


def _lua(body: bytes, headers: Mapping[str, str]) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(match[1]) * _UNIT[match[2]] if match else float("nan")


def parse(output: str, seconds: float) -> WrkResult:
    """wrk's text summary as a `WrkResult`."""
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    if total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    errors = int(non2xx[1]) if non2xx else 0
    errors += sum(int(x) for x in sock.groups()) if sock else 0
    p50 = re.search(r"\s50%\s+(\S+)", output)
    p99 = re.search(r"\s99%\s+(\S+)", output)
    return WrkResult(int(total[1]), errors, seconds,
                     _ms(p50[1]) if p50 else float("nan"), _ms(p99[1]) if p99 else float("nan"))


def run(url: str, body: bytes, headers: Mapping[str, str], *, seconds: float,
        connections: int = 32) -> WrkResult:
    """One closed-loop run of `seconds` against `url`, pinned to the load core."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(body, headers))
    try:
        argv = procs.pinned(procs.LOAD_CORE, [
            wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
            "--timeout", "10s", "-s", script.name, url])
        done = subprocess.run(argv, capture_output=True, text=True, check=True,
                              timeout=seconds + 60)
    finally:
        Path(script.name).unlink()
    return parse(done.stdout, seconds)
