"""`switchyard demo`: the whole system on this machine, with fake providers.

Parses the command line and hands over to `switchyard_cli.demo.scenario`; see that
package for what runs. `hack/demo.sh` (`make demo`) installs the venv and calls this.
"""

from __future__ import annotations

import argparse
import sys

from switchyard_cli.demo import scenario


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `switchyard demo`."""
    parser.add_argument("--no-ui", action="store_true",
                        help="print plain lines (for logs) instead of the refreshing table")
    parser.add_argument("--duration", type=_positive, default=None, metavar="SECONDS",
                        help="stop after this many seconds of traffic (default: Ctrl-C)")
    parser.add_argument("--phase-seconds", type=_positive, default=20.0, metavar="SECONDS",
                        help="length of each phase: split, primary down, fallback 1 down, "
                        "re-weight (default 20)")
    parser.add_argument("--rate", type=_positive, default=20.0,
                        help="requests per second sent through the gateway (default 20)")
    parser.add_argument("--port", type=int, default=None,
                        help="the gateway's port on 127.0.0.1 (default: a free one)")


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    ui = not args.no_ui and sys.stdout.isatty()
    options = scenario.Options(ui=ui, duration=args.duration, phase_seconds=args.phase_seconds,
                               rate=args.rate, port=args.port, refresh=1.0 if ui else 2.0)
    return scenario.run(options)
