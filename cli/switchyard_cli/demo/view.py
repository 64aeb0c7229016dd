"""How the demo shows itself: a refreshing terminal table, or plain lines for logs.

`TerminalView` redraws the whole screen (ANSI home + clear) with the phase, each target's
configured weight against its observed share, req/s, p50/p99 and fallbacks, recent events
and the commands to try by hand; while the control plane builds it draws a progress bar.
`PlainView` (`--no-ui`) prints one status line per report and every event as it happens.
Both write to a text stream given at construction (stdout by default).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol, TextIO

from switchyard_cli.demo.stats import Stats

BUILD_STEPS = 5  # etcd, kube-apiserver, kube-controller-manager, kubectl, helm (build.sh)
_BUILD_LINE = re.compile(r"(reusing cached|building|built) (\S+)")
_BAR = 24


@dataclasses.dataclass(frozen=True, slots=True)
class Screen:
    """Everything one refresh shows."""

    model: str
    phase: str  # "2/4 primary down: ..."
    elapsed: float
    window_seconds: float
    stats: Stats
    hints: Sequence[str]


class View(Protocol):
    """What the scenario talks to."""

    def build_line(self, line: str) -> None:
        """A progress line of the control-plane build (hack/controlplane/build.sh)."""

    def build_done(self) -> None:
        """The binaries are ready."""

    def event(self, line: str) -> None:
        """Something happened (startup step, phase change, summary)."""

    def show(self, screen: Screen) -> None:
        """A periodic refresh."""

    def close(self) -> None:
        """Restore the terminal."""


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} ms"


def share_bar(share: float, weight: int | None, width: int = _BAR) -> str:
    """`share` as a bar of `width` cells, with `|` where the configured weight ends."""
    filled = round(share * width)
    cells = ["█" if i < filled else "░" for i in range(width)]
    if weight is not None:
        mark = min(width - 1, max(0, round(weight / 100 * width) - 1))
        cells[mark] = "┃"
    return "".join(cells)


def table(stats: Stats) -> list[str]:
    """The targets table, one line per target in routing order."""
    width = max([len(r.info.name) for r in stats.rows] + [6])
    lines = [f"  {'target':<{width}}  {'role':<10}  weight  {'observed share':<{_BAR + 8}}  served"]
    for r in stats.rows:
        role = f"{r.info.role} {r.info.position}"
        weight = f"{r.weight:>5}%" if r.weight is not None else "     -"
        lines.append(f"  {r.info.name:<{width}}  {role:<10}  {weight}  "
                     f"{share_bar(r.share, r.weight)} {_pct(r.share)}  {r.served:>6}")
    lines.append("")
    lines.append(f"  {stats.per_second:5.1f} req/s   p50 {_ms(stats.p50_ms)}   "
                 f"p99 {_ms(stats.p99_ms)}   fallbacks taken {stats.fallbacks}   "
                 f"errors {stats.errors}")
    return lines


def status_line(screen: Screen) -> str:
    """One plain line for `--no-ui` logs."""
    s = screen.stats
    shares = " ".join(f"{r.info.name}={r.share:.2f}" for r in s.rows)
    return (f"[{screen.elapsed:6.1f}s] phase {screen.phase.split(':')[0]} | {shares} | "
            f"{s.per_second:.1f} req/s p50 {_ms(s.p50_ms)} p99 {_ms(s.p99_ms)} "
            f"fallbacks {s.fallbacks} errors {s.errors}")


class PlainView:
    """`--no-ui`: plain lines, flushed at once (for logs and tests)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def build_line(self, line: str) -> None:
        self._print(line)

    def build_done(self) -> None:
        self._print("control plane binaries ready")

    def event(self, line: str) -> None:
        self._print(line)

    def show(self, screen: Screen) -> None:
        self._print(status_line(screen))

    def close(self) -> None:
        return


class TerminalView:
    """The refreshing full-screen table (a terminal is expected)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.events: deque[str] = deque(maxlen=8)
        self._lock = threading.Lock()
        self._built = 0
        self._current = "checking the cache"
        self._build_started = time.monotonic()
        self._ticker: threading.Thread | None = None
        self._ticking = threading.Event()
        self._drawn = False

    def build_line(self, line: str) -> None:
        match = _BUILD_LINE.search(line)
        if match is not None:
            with self._lock:
                verb, name = match.groups()
                if verb == "building":
                    self._current = f"building {name}"
                else:
                    self._built += 1
                    self._current = f"{verb} {name}"
        if self._ticker is None:
            self._ticking.set()
            self._ticker = threading.Thread(target=self._tick, daemon=True, name="demo-progress")
            self._ticker.start()
        self._draw_progress()

    def build_done(self) -> None:
        self._ticking.clear()
        if self._ticker is not None:
            self._ticker.join(2)
            self._draw_progress()
            self.out.write("\n")
        self.out.flush()

    def _tick(self) -> None:
        while self._ticking.is_set():
            time.sleep(1.0)
            if self._ticking.is_set():
                self._draw_progress()

    def _draw_progress(self) -> None:
        with self._lock:
            done = min(self._built, BUILD_STEPS)
            bar = "█" * (done * 4) + "░" * ((BUILD_STEPS - done) * 4)
            elapsed = int(time.monotonic() - self._build_started)
            line = (f"\r\x1b[2Kcontrol plane [{bar}] {done}/{BUILD_STEPS} {self._current} "
                    f"({elapsed // 60}m{elapsed % 60:02d}s; first build only, then cached)")
            self.out.write(line)
            self.out.flush()

    def event(self, line: str) -> None:
        if not line.startswith("try: "):  # shown in their own section
            self.events.append(line)
        if not self._drawn:
            print(line, file=self.out, flush=True)

    def show(self, screen: Screen) -> None:
        self._drawn = True
        lines = [f"\x1b[1mSwitchyard demo\x1b[0m  model={screen.model}   "
                 f"{int(screen.elapsed) // 60:02d}:{int(screen.elapsed) % 60:02d}   "
                 "Ctrl-C stops everything",
                 f"phase {screen.phase}", "",
                 f"  last {screen.window_seconds:.0f}s, as the OpenAI SDK client saw it "
                 "(┃ = configured weight):", *table(screen.stats), "",
                 "\x1b[1mevents\x1b[0m", *(f"  {e}" for e in self.events), "",
                 "\x1b[1mtry it by hand\x1b[0m", *(f"  {h}" for h in screen.hints)]
        self.out.write("\x1b[?25l\x1b[H\x1b[J" + "\n".join(lines) + "\n")
        self.out.flush()

    def close(self) -> None:
        self.out.write("\x1b[?25h")
        self.out.flush()
