"""`switchyard validate FILE_OR_DIR...`: the API server's verdicts, offline, for CI pipelines.

Checks every switchyard.dev object (a wrong kind or version of ours is an error) and skips
other kinds, such as the Secrets beside the endpoints. Exit 0 when all are valid, 1 when
any is invalid, 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from switchyard_cli import manifests
from switchyard_schema import is_ours, validate_manifest

GREEN, RED, DIM, RESET = "\033[32m", "\033[31m", "\033[2m", "\033[0m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's flags."""
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="manifests ('-' = stdin)")
    parser.add_argument("--no-color", action="store_true", help="plain text even on a terminal")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only")


def _painter(out: TextIO, no_color: bool) -> Any:
    on = out.isatty() and not no_color and "NO_COLOR" not in os.environ

    def paint(text: str, color: str) -> str:
        return f"{color}{text}{RESET}" if on else text

    return paint


def _weights_total(body: dict[str, Any]) -> tuple[str, bool]:
    split = (
        (body.get("spec") or {}).get("trafficSplit") if isinstance(body.get("spec"), dict) else None
    )
    if not isinstance(split, list):
        return "weights: -", False
    weights = [t.get("weight") for t in split if isinstance(t, dict)]
    if not all(isinstance(w, int) and not isinstance(w, bool) for w in weights):
        return "weights: not all integers", False
    total = sum(w for w in weights if isinstance(w, int))
    return f"weights total {total}", total == 100


def _name(body: dict[str, Any]) -> str:
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    ns = meta.get("namespace") or "default"
    return f"{ns}/{meta.get('name', '?')}"


def run(args: argparse.Namespace) -> int:
    """Validate every switchyard.dev object in the given paths."""
    out = sys.stdout
    paint = _painter(out, args.no_color)
    checked = invalid = 0
    try:
        for doc in manifests.read(args.paths):
            if not is_ours(doc.body):
                continue
            checked += 1
            problems = validate_manifest(doc.body)
            invalid += bool(problems)
            weights, ok = _weights_total(doc.body)
            if problems or not args.quiet:
                verdict = paint("invalid", RED) if problems else paint("valid", GREEN)
                print(
                    f"{_name(doc.body)} ({doc.source}): {verdict}, "
                    f"{paint(weights, GREEN if ok else RED)}",
                    file=out,
                )
            for problem in problems:
                print(f"  {problem}", file=out)
    except manifests.UnreadableInput as exc:
        print(f"switchyard validate: {exc}", file=sys.stderr)
        return 2
    if checked == 0:
        print("switchyard validate: no switchyard.dev objects found", file=sys.stderr)
        return 0
    summary = f"{checked} endpoint(s) checked, {invalid} invalid"
    print(paint(summary, RED if invalid else DIM), file=out)
    return 1 if invalid else 0
