"""Multi-process mode (`switchyard gateway --workers N`): N forked workers on one port.

Each worker is a whole gateway (its own event loop, config sources, upstream session) with
its own listening socket bound with SO_REUSEPORT, so the kernel spreads new connections
across workers without a shared accept queue. The parent only supervises: it reserves the
port (a bound, never-listening SO_REUSEPORT socket, so `--port 0` works and nobody else
can take the port), forwards SIGTERM/SIGINT, and exits when the workers have. A worker
that dies on its own takes the others down and the parent exits 1, so the pod restarts
rather than serving with fewer workers than asked.

Metrics: Prometheus multiprocess mode. The parent points PROMETHEUS_MULTIPROC_DIR at an
empty folder (a fresh temp folder unless the variable is set), each worker writes its
samples there, and every worker's `/metrics` renders the sum over all workers
(`GatewayMetrics.render`). Gauges aggregate as documented on each gauge; the config
staleness gauge stays per worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from prometheus_client import multiprocess, values

from switchyard_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_dir() -> Path:
    given = os.environ.get(MULTIPROC_ENV)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="switchyard-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # samples of an earlier run would be summed in
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def _reserve(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(settings: GatewaySettings, serve_one: Callable[[GatewaySettings], None]) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    # prometheus_client picks its value store at import time, before the variable was set.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        serve_one(settings)
    except BaseException:
        log.exception("worker %d failed", os.getpid())
        return 1
    return 0


def worker_settings(shared: GatewaySettings, index: int) -> GatewaySettings:
    """One worker's settings: its own status report (`report.py`), `<name>-w<index>`, since
    each worker has its own config store and cooldowns; one shared name would make the
    workers overwrite each other's report with differing views."""
    if not shared.report_name:
        return shared
    return dataclasses.replace(shared, report_name=f"{shared.report_name}-w{index}")


def run(settings: GatewaySettings, count: int,
        serve_one: Callable[[GatewaySettings], None]) -> int:
    """Fork `count` workers running `serve_one` and supervise them; the exit code."""
    created = not os.environ.get(MULTIPROC_ENV)
    folder = _metrics_dir()
    placeholder = _reserve(settings.host, settings.port)
    shared = dataclasses.replace(settings, port=placeholder.getsockname()[1], reuse_port=True)
    children: set[int] = set()
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            placeholder.close()
            os._exit(_worker(worker_settings(shared, index), serve_one))
        children.add(pid)
    log.info("gateway: %d workers on %s:%d (pids %s)", count, shared.host, shared.port,
             sorted(children))
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while children:
        pid, status = os.wait()
        children.discard(pid)
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        if not stopping:
            log.error("worker %d exited (status %d); stopping the others", pid, status)
            code = 1
            stop(signal.SIGTERM, None)
    placeholder.close()
    if created:
        shutil.rmtree(folder, ignore_errors=True)
    return code

