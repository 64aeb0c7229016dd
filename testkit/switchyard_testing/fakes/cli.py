"""`python -m switchyard_testing.fakes`: run one fake provider as its own process.

Used by `switchyard demo` and `bench/`, which need upstreams in separate processes. Prints
one line, `listening <provider> http://HOST:PORT`, once the port is bound (so a parent
that asked for port 0 learns the real one), then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from switchyard_testing.fakes.registry import FAKES
from switchyard_testing.fakes.script import Fault, Script


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m switchyard_testing.fakes", description=__doc__)
    parser.add_argument("--provider", choices=sorted(FAKES), default="openai")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--name", default="fake", help="named in every reply, so callers see who served"
    )
    parser.add_argument("--api-key", default=None, help="answer 401 unless requests carry this key")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests that fail")
    parser.add_argument(
        "--faults",
        default="unavailable",
        help="comma-separated faults drawn (evenly) for failing requests: "
        + ", ".join(f.value for f in Fault if f is not Fault.OK),
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.0, help="seconds between stream frames"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_script(args: argparse.Namespace) -> Script:
    """A `Script` from `--fault-rate`, `--faults` and `--seed`."""
    faults = [Fault(name.strip()) for name in args.faults.split(",") if name.strip()]
    rates = {fault: args.fault_rate / len(faults) for fault in faults} if args.fault_rate else {}
    return Script(rates=rates, seed=args.seed)


async def run(args: argparse.Namespace) -> None:
    """Serve until a termination signal arrives."""
    fake = await FAKES[args.provider].start(
        args.host,
        args.port,
        name=args.name,
        script=build_script(args),
        expected_key=args.api_key,
        chunk_delay=args.chunk_delay,
    )
    print(f"listening {args.provider} {fake.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    try:
        build_script(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    asyncio.run(run(args))
    return 0
