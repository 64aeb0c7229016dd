"""Processes under measurement: start pinned to a core, wait for a port, read CPU and RSS.

Every system the benchmark drives (nginx, the naive proxy, Switchyard, the peers) is a
child process started here with `taskset`, so the gateway under test owns core 1 while
the load generator and the upstream share core 0. CPU time comes from
/proc/<pid>/stat (utime + stime of the process and its children's threads), RSS from
/proc/<pid>/status: read before and after a run, the difference per request is the
most robust figure on a shared machine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GATEWAY_CORE = "1"
LOAD_CORE = "0"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: str, argv: Sequence[str]) -> list[str]:
    """`argv` run on `core` only (taskset execs it, so the pid is the program's)."""
    return ["taskset", "-c", core, *argv]


class Child:
    """A started child process with its log file."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        full_env = {**os.environ, **(env or {})}
        with self.log_path.open("ab") as log:
            log.write(f"==> {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                                          start_new_session=True)

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.popen.pid

    def pids(self) -> list[int]:
        """The child and its descendants (uvicorn/gunicorn workers fork)."""
        out = [self.pid]
        for pid in out:
            with contextlib.suppress(OSError):
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                out.extend(int(c) for c in children)
        return out

    def cpu_seconds(self) -> float:
        """utime + stime of the process tree so far."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def rss_bytes(self) -> int:
        """Resident set size of the process tree."""
        return sum(rss_bytes(pid) for pid in self.pids())

    def tail(self, lines: int = 30) -> str:
        """The end of the log, for error messages."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, 15)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, 9)
            self.popen.wait(5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14, stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """VmRSS of one process; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def wait_http(url: str, child: Child, timeout: float = 120.0, method: str = "GET",
              body: bytes | None = None, headers: Mapping[str, str] | None = None) -> None:
    """Wait until `url` answers 2xx; raise with the log tail if the child died."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if child.popen.poll() is not None:
            raise RuntimeError(f"{child.name} exited ({child.popen.returncode}):\n{child.tail()}")
        request = urllib.request.Request(url, data=body, method=method,
                                         headers=dict(headers or {}))
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5) as reply:
            if 200 <= reply.status < 300:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout}s:\n{child.tail()}")
