"""The demo's script: bring the system up, drive traffic through four phases, tear down.

Phases (each `phase_seconds` long; the last state stays until Ctrl-C or `--duration`):

1. `split` - the example's 50/50 A/B split, every fake healthy;
2. `primary-down` - the first split target's fake answers 503: its share moves to the
   first fallback, the other arm keeps its own share;
3. `fallback-1-down` - the first fallback fails too: the share moves on to the second;
4. `reweight` - the fakes recover and `kubectl apply` shifts the split to 90/10.

At the end of each phase one `summary phase=...` line gives the shares over the phase's
second half (after the change has settled), so a log, or the demo's test, can check them.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

from switchyard_cli.demo import overlay, stats, view
from switchyard_cli.demo.system import DemoError, DemoSystem
from switchyard_cli.demo.traffic import TrafficDriver
from switchyard_testing import binaries
from switchyard_testing.cluster import KubectlError
from switchyard_testing.controlplane import ControlPlaneError

LIVE_WINDOW = 5.0  # seconds of traffic behind each refresh


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """The command line, parsed."""

    ui: bool
    duration: float | None  # seconds of traffic, None = until Ctrl-C
    phase_seconds: float
    rate: float
    port: int | None
    refresh: float


@dataclasses.dataclass(frozen=True, slots=True)
class Phase:
    """One step of the scenario: what it shows, and the change that starts it."""

    key: str
    title: str
    enter: Callable[[DemoSystem], None]
    weights: dict[str, int]


def phases(targets: Sequence[overlay.TargetInfo]) -> list[Phase]:
    """The four phases for the example's targets."""
    split = [t for t in targets if t.role == "split"]
    fallbacks = [t for t in targets if t.role == "fallback"]
    primary, other, first, second = split[0], split[1], fallbacks[0], fallbacks[1]
    even = {t.name: t.weight or 0 for t in split}
    shifted = {primary.name: 90, other.name: 10}

    def reweight(system: DemoSystem) -> None:
        system.heal(primary.name)
        system.heal(first.name)
        system.apply_weights(shifted)

    return [
        Phase("split", f"A/B split {even[primary.name]}/{even[other.name]}, every provider "
              "healthy", lambda s: None, even),
        Phase("primary-down", f"{primary.name} answers 503: its share goes to fallback 1 "
              f"({first.name}); {other.name} keeps its own", lambda s: s.fail(primary.name),
              even),
        Phase("fallback-1-down", f"{first.name} fails too: the share moves on to fallback 2 "
              f"({second.name})", lambda s: s.fail(first.name), even),
        Phase("reweight", "providers healthy again; `kubectl apply` shifts the split to "
              f"{shifted[primary.name]}/{shifted[other.name]}", reweight, shifted),
    ]


def summary_line(phase: Phase, result: stats.Stats) -> str:
    """The machine-readable end-of-phase line."""
    weights = ",".join(f"{k}:{v}" for k, v in phase.weights.items())
    shares = ",".join(f"{r.info.name}:{r.share:.3f}" for r in result.rows)
    served = ",".join(f"{r.info.name}:{r.served}" for r in result.rows)
    return (f"summary phase={phase.key} weights={weights} shares={shares} served={served} "
            f"requests={result.requests} errors={result.errors} fallbacks={result.fallbacks} "
            f"p50_ms={result.p50_ms or 0:.1f} p99_ms={result.p99_ms or 0:.1f}")


def hints(system: DemoSystem) -> list[str]:
    """The commands a human can paste while the demo runs."""
    url = system.gateway_url()
    admin = system.gateway_admin_url()
    body = ('{"model": "' + system.model + '", "messages": [{"role": "user", '
            '"content": "hi"}]}')
    sdk = (f'from openai import OpenAI; r = OpenAI(base_url="{url}/v1", api_key="unused")'
           f'.chat.completions.with_raw_response.create(model="{system.model}", '
           'messages=[{"role": "user", "content": "hi"}]); '
           'print(r.headers["x-switchyard-target"], r.parse().choices[0].message.content)')
    return [
        f"curl -si {url}/v1/chat/completions -H 'content-type: application/json' -d '{body}'",
        f"{sys.executable} -c '{sdk}'",
        f"{sys.executable} -m switchyard_cli.main status --gateway {admin}    "
        f"(page: {admin}/ui)",
        f"{system.kubectl_hint()} get gatewayendpoints -n {system.namespace}",
    ]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(options: Options, out: view.View | None = None) -> int:
    """Run the demo; returns the exit code (0 after Ctrl-C, SIGTERM or `--duration`)."""
    shown = out or (view.TerminalView() if options.ui else view.PlainView())
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        try:
            bin_dir = binaries.locate(progress=shown.build_line)
        except binaries.BinariesUnavailable as exc:
            shown.event(f"error: the control plane is not available: {exc}")
            return 1
        shown.build_done()
        system = DemoSystem(bin_dir, shown.event, options.port)
        try:
            system.start()
            return _drive(system, options, shown)
        except (DemoError, ControlPlaneError, KubectlError, TimeoutError, RuntimeError) as exc:
            shown.event(f"error: {exc}")
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
            pids, dirs = system.pids(), system.temp_dirs
            system.close()
            shown.close()
            listing = " ".join(f"{name}={pid}" for name, pid in pids.items())
            shown.event(f"stopped processes: {listing or '-'}")
            shown.event(f"removed temp data: {' '.join(str(d) for d in dirs)}")
            signal.signal(signal.SIGINT, signal.default_int_handler)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _drive(system: DemoSystem, options: Options, shown: view.View) -> int:
    targets = overlay.targets(system.endpoint)
    steps = phases(targets)
    pids = " ".join(f"{name}={pid}" for name, pid in system.pids().items())
    shown.event(f"processes: {pids}")
    shown.event(f"temp data: {' '.join(str(d) for d in system.temp_dirs)}")
    help_lines = hints(system)
    for line in help_lines:
        shown.event(f"try: {line}")
    driver = TrafficDriver(system.gateway_url(), system.model, options.rate)
    start = time.monotonic()
    end = start + options.duration if options.duration else math.inf
    current, entered, summarized = 0, start, -1
    _enter(steps, 0, system, shown)
    driver.start()
    try:
        while (now := time.monotonic()) < end:
            if summarized < current and now - entered >= options.phase_seconds:
                _summarize(steps[current], driver, targets, entered, options, shown)
                summarized = current
                if current + 1 < len(steps):
                    current, entered = current + 1, now
                    _enter(steps, current, system, shown)
                else:
                    shown.event("every phase shown; traffic goes on as it is until Ctrl-C")
            step = steps[current]
            shown.show(view.Screen(
                model=system.model, phase=f"{current + 1}/{len(steps)} {step.key}: {step.title}",
                elapsed=now - start, window_seconds=LIVE_WINDOW,
                stats=stats.compute(driver.since(now - LIVE_WINDOW), targets, step.weights,
                                    min(LIVE_WINDOW, max(now - start, 1.0))),
                hints=help_lines))
            time.sleep(options.refresh)
        if summarized < current and time.monotonic() - entered > options.phase_seconds / 2 + 1:
            _summarize(steps[current], driver, targets, entered, options, shown)
    finally:
        driver.stop()
    return 0


def _enter(steps: Sequence[Phase], index: int, system: DemoSystem, shown: view.View) -> None:
    steps[index].enter(system)
    shown.event(f"phase {index + 1}/{len(steps)} {steps[index].key}: {steps[index].title}")


def _summarize(phase: Phase, driver: TrafficDriver, targets: Sequence[overlay.TargetInfo],
               entered: float, options: Options, shown: view.View) -> None:
    begin = entered + options.phase_seconds / 2
    finish = min(time.monotonic(), entered + options.phase_seconds)
    window = [s for s in driver.since(begin) if s.at <= finish]
    result = stats.compute(window, targets, phase.weights, max(finish - begin, 1e-9))
    shown.event(summary_line(phase, result))
