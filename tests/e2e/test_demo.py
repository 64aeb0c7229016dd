"""`switchyard demo --no-ui`, run as a user would, for a bounded time.

The demo starts its own control plane, operator, gateway and fakes, so this test does not
use the session's cluster fixture, only the cached binaries. It checks what the demo
printed: the 50/50 split, the primary's share moving to fallback 1 and then, when that
fails too, to fallback 2 (in order, never to the other arm), the 90/10 re-weight, no
failed requests; and that afterwards every process it started is gone and its temporary
folders are removed. Shares are checked with wide tolerances (a few hundred requests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from switchyard_testing import binaries

PHASE_SECONDS = 10
PHASES = 4
PRIMARY, OTHER, FIRST, SECOND = "gpt5", "claude", "openai-gpt-5-mini", "anthropic-claude-haiku-4-5"


def _bin_dir() -> Path:
    try:
        return binaries.locate()
    except binaries.BinariesUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI: the demo needs the control plane binaries: {exc}")
        pytest.skip(f"the demo needs the control plane binaries: {exc}")


def _summaries(out: str) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for line in out.splitlines():
        if not line.startswith("summary "):
            continue
        fields = dict(f.split("=", 1) for f in line.split()[1:])
        shares = {k: float(v) for k, v in (p.split(":") for p in fields["shares"].split(","))}
        shares.update(errors=float(fields["errors"]), requests=float(fields["requests"]),
                      fallbacks=float(fields["fallbacks"]))
        found[fields["phase"]] = shares
    return found


def _alive(pid: int, markers: list[str]) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    # A reused pid belongs to someone else: only ours carry the demo's folders or names.
    return state != "Z" and any(m in cmdline for m in markers)


def _processes_mentioning(paths: list[str]) -> list[str]:
    hits = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(p in cmdline for p in paths):
            hits.append(f"{proc.name}: {cmdline.replace(chr(0), ' ')[:200]}")
    return hits


def test_demo_shows_split_failover_in_order_and_reweight_then_cleans_up() -> None:
    bin_dir = _bin_dir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env[binaries.BIN_DIR_ENV] = str(bin_dir)
    duration = PHASES * PHASE_SECONDS + 2
    done = subprocess.run(
        [sys.executable, "-m", "switchyard_cli.main", "demo", "--no-ui",
         "--duration", str(duration), "--phase-seconds", str(PHASE_SECONDS), "--rate", "20"],
        capture_output=True, text=True, timeout=duration + 180, env=env,
        stdin=subprocess.DEVNULL)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]

    phases = _summaries(out)
    assert list(phases) == ["split", "primary-down", "fallback-1-down", "reweight"], out[-3000:]
    for name, p in phases.items():
        assert p["errors"] == 0 and p["requests"] >= 40, (name, p)

    split = phases["split"]
    assert 0.3 < split[PRIMARY] < 0.7 and 0.3 < split[OTHER] < 0.7, split
    assert split["fallbacks"] == 0, split

    down = phases["primary-down"]  # the primary's half goes to fallback 1, not to the other arm
    assert down[PRIMARY] == 0 and down[SECOND] == 0, down
    assert 0.3 < down[FIRST] < 0.7 and 0.3 < down[OTHER] < 0.7, down

    both = phases["fallback-1-down"]  # then on to fallback 2
    assert both[PRIMARY] == 0 and both[FIRST] == 0, both
    assert 0.3 < both[SECOND] < 0.7 and 0.3 < both[OTHER] < 0.7, both

    reweight = phases["reweight"]
    assert reweight[PRIMARY] > 0.75 and 0.02 < reweight[OTHER] < 0.25, reweight
    assert reweight["fallbacks"] == 0, reweight

    assert "try: curl -si http://127.0.0.1:" in out and "OpenAI(base_url=" in out

    stopped = re.search(r"^stopped processes: (.+)$", out, re.M)
    removed = re.search(r"^removed temp data: (.+)$", out, re.M)
    assert stopped and removed, out[-2000:]
    pids = {name: int(pid) for name, pid in (p.split("=") for p in stopped.group(1).split())}
    assert {"etcd", "kube-apiserver", "kube-controller-manager"} <= set(pids), pids
    assert any(n.startswith("operator") for n in pids) and any(
        n.startswith("gateway") for n in pids), pids
    dirs = removed.group(1).split()
    markers = [*dirs, "switchyard_cli.main", "etcd", "kube-"]
    assert [n for n, pid in pids.items() if _alive(pid, markers)] == []
    assert [d for d in dirs if Path(d).exists()] == []
    assert _processes_mentioning(dirs) == []
