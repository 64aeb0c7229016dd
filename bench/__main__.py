"""`python -m bench` (or bench/run.sh): the whole benchmark, printed and written to docs/.

Pins itself to the load core, installs what is missing (wrk, nginx, the pinned peers),
starts nginx, runs the side-by-side comparison (with what telemetry costs when off,
`tracing_off.py`) and the extra sections (scale, failover, caller identity, propagation,
control-plane scale, ten thousand streams over HTTP/2 and HTTP/1.1), prints the markdown
and writes docs/benchmarks.md. Loopback only; every part is bounded in time and count.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    auth,
    bulk,
    compare,
    failover,
    procs,
    propagation,
    report,
    scale,
    streams,
    tools,
    tracing_off,
    upstream,
)

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("compare", "scale", "failover", "auth", "propagation", "bulk", "streams")


def _plan(args: argparse.Namespace) -> compare.Plan:
    if args.quick:
        return compare.Plan(warmup=1, closed_seconds=4, open_seconds=4, open_warmup=1,
                            rounds=args.rounds or 1)
    return compare.Plan(rounds=args.rounds or 3)


def main() -> int:
    """Run the benchmark; 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke check)")
    parser.add_argument("--rounds", type=int, default=0,
                        help="rounds per system (default 3: a true median)")
    parser.add_argument("--systems", default="direct,naive,switchyard,switchyard-traced,"
                        "switchyard-2w,mlflow,litellm")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                        help="where to write the report ('-' for nowhere)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(procs.LOAD_CORE)})
    tools.ensure_debian({"wrk": "wrk", "nginx": "nginx-light"})
    names = [n for n in args.systems.split(",") if n]
    sections = [s for s in args.sections.split(",") if s]
    skipped: dict[str, str] = {}
    for peer in ("litellm", "mlflow"):
        if peer in names and (reason := tools.ensure_peer(peer)):
            skipped[peer] = reason
            names.remove(peer)
    plan = _plan(args)
    folder = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    print(f"[bench] logs and configs in {folder}", file=sys.stderr)
    ups, nginx = upstream.start(folder)
    table_lines: list[str] = []
    target_lines: list[str] = []
    extra: list[str] = []
    try:
        if "compare" in sections:
            samples = compare.run_all(names, ups, nginx, folder, plan)
            rows = report.medians(samples)
            table_lines = report.table(rows, plan.rates)
            hooks = tracing_off.hooks_ns()
            target_lines = report.targets(rows, hooks)
            extra += tracing_off.section(hooks, rows.get("switchyard", {}).get("cpu_us"))
            for peer, reason in skipped.items():
                table_lines.append(f"\n{peer}: not measured ({reason}).")
        if "scale" in sections:
            extra += _guarded("Scale", lambda: scale.section(ups, folder, quick=args.quick))
        if "failover" in sections:
            extra += _guarded("Failover",
                              lambda: failover.section(ups, folder, quick=args.quick))
        if "auth" in sections:
            extra += _guarded("Caller identity",
                              lambda: auth.section(ups, folder, quick=args.quick))
    finally:
        nginx.stop()
    if "propagation" in sections:
        extra += _guarded("Propagation", lambda: propagation.section(folder, quick=args.quick))
    if "bulk" in sections:
        extra += _guarded("Control-plane scale",
                          lambda: bulk.section(folder, quick=args.quick))
    if "streams" in sections:
        extra += _guarded("Ten thousand streams",
                          lambda: streams.section(folder, quick=args.quick))
    versions = {**_own_versions(), **{p: tools.peer_version(p) for p in
                                                  ("litellm", "mlflow") if p in names}}
    command = "bench/run.sh" + ("" if sys.argv[1:] == [] else " " + " ".join(sys.argv[1:]))
    text = report.document(table_lines, target_lines, extra, versions, command, plan)
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text)
    return 0


def _guarded(title: str, part: Callable[[], list[str]]) -> list[str]:
    # One section failing must not lose the others' figures: report it instead.
    try:
        return part()
    except Exception as exc:
        traceback.print_exc()
        return [f"## {title}", "", f"Not measured: the run failed ({type(exc).__name__}: "
                f"{exc}).", ""]


def _own_versions() -> dict[str, str]:
    from importlib import metadata
    return {name: metadata.version(name) for name in ("aiohttp", "httptools", "uvloop", "orjson")}


if __name__ == "__main__":
    sys.exit(main())
