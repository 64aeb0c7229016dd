"""`python -m switchyard_testing.node up`: build, start a node, print its kubeconfig and wait
for Ctrl-C; then stop it and restore the machine (as root)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from switchyard_testing import binaries, processes
from switchyard_testing.node import Node, NodeError, NodeUnavailable, build, images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m switchyard_testing.node")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a control plane with one node; Ctrl-C stops it")
    up.add_argument("--keep", action="store_true", help="keep the folder (logs) on exit")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        bin_dir = build(say)
        binaries.locate(bin_dir)
        node = Node.start(bin_dir, images(bin_dir, say), progress=say, keep=args.keep)
    except (NodeUnavailable, NodeError, binaries.BinariesUnavailable) as exc:
        say(f"error: {exc}")
        return 1
    with node:
        processes.hold_until_signalled(say, node.kubeconfig, Path(node.root) / "logs",
                                       " and restores the machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
