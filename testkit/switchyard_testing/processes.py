"""Child processes of the test kit, each logging to its own file.

Used by `controlplane.py` for etcd, kube-apiserver and kube-controller-manager; usable for
any long-running helper a test starts (the operator, a gateway). Stopping is always
SIGTERM, then SIGKILL after a grace period, so a hung process cannot hang the test run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask Linux to SIGTERM the child when the
    # parent thread dies, so a test run killed with SIGKILL leaves no etcd behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """One child process whose stdout and stderr go to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (appending to its log, so a restart keeps the history)."""
        # The death signal fires when the *thread* that forked exits; only the main thread
        # lives as long as the process, so elsewhere the child is left to stop().
        in_main = threading.current_thread() is threading.main_thread()
        with self.log_path.open("ab") as log:
            log.write(f"==> {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the child
                preexec_fn=_die_with_parent if in_main and os.name == "posix" else None,
            )

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def returncode(self) -> int | None:
        """The exit status, or None while it runs (or before it started)."""
        return self._popen.poll() if self._popen else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout` seconds, then SIGKILL. Safe to call twice."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()

    def kill(self) -> None:
        """SIGKILL at once (a crash, as the chaos tests want it) and reap the process."""
        popen = self._popen
        if popen is not None and popen.poll() is None:
            popen.kill()
            popen.wait()

    def tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        return "\n".join(text.splitlines()[-lines:])

    def describe_exit(self) -> str:
        """A paragraph for an error message: how the process ended and its log tail."""
        code = self.returncode()
        state = "is running" if code is None else f"exited with status {code}"
        return f"{self.name} {state}; log {self.log_path}, last lines:\n{self.tail()}"


def hold_until_signalled(say: Callable[[str], None], kubeconfig: Path, logs: Path,
                         stops: str) -> None:
    """Print how to reach a started cluster, then block until SIGINT or SIGTERM (the life
    of a foreground `python -m switchyard_testing.controlplane` or `.node` command)."""
    print(kubeconfig, flush=True)
    say(f"export KUBECONFIG={kubeconfig}   # logs in {logs}")
    say(f"Ctrl-C stops it{stops}.")
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)
