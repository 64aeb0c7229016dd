"""`switchyard status`: the gateway's status page as a table in the terminal.

Reads `GET /ui/status.json` from a running gateway's admin port (`--gateway`, default
http://127.0.0.1:8081) and prints, per endpoint, its config version and age, req/s,
p50/p99 and fallbacks, then one line per target in routing order with the configured
weight against the observed share over the gateway's recent window. `--json` prints the
document as is. Standard library only (urllib): it works from any machine that can reach
the gateway's admin port (which needs no token; `--token` is for a proxy in front of it).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

DEFAULT_GATEWAY = "http://127.0.0.1:8081"  # the admin port (`--admin-port`)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `switchyard status`."""
    parser.add_argument("--gateway", default=DEFAULT_GATEWAY, metavar="URL",
                        help=f"the gateway's admin URL (default {DEFAULT_GATEWAY})")
    parser.add_argument("--token", default=None,
                        help="bearer token, for a proxy in front of the admin port (the "
                        "gateway's admin port itself needs none)")
    parser.add_argument("--json", action="store_true", help="print the raw status JSON")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")


def fetch(gateway: str, token: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """The gateway's status document. Raises OSError (unreachable) or ValueError (not JSON)."""
    request = urllib.request.Request(gateway.rstrip("/") + "/ui/status.json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        body: dict[str, Any] = json.loads(reply.read())
        return body


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def format_endpoint(ep: dict[str, Any], window: float) -> list[str]:
    """The lines of one endpoint."""
    lat = ep["latency"]
    lines = [
        f"{ep['key']}  ({ep['task']})  config {ep['spec_hash'].removeprefix('sha256:')[:12]} "
        f"gen {ep['generation']}, applied {_age(ep['age_seconds'])} ago",
        f"  {ep['requests_per_second']:.1f} req/s  p50 {_num(lat['p50_ms'], ' ms')}  "
        f"p99 {_num(lat['p99_ms'], ' ms')}  fallbacks {ep['fallbacks_window']:.0f} "
        f"({ep['fallbacks_total']:.0f} total)  errors {ep['errors_window']:.0f}   "
        f"[last {window:.0f}s]",
    ]
    width = max([len(t["name"]) for t in ep["targets"]] + [6])
    lines.append(f"  {'target':<{width}}  {'role':<10}  {'weight':>6}  {'share':>6}  "
                 f"{'served':>7}  {'as fallback':>11}  model")
    for t in ep["targets"]:
        role = f"{t['role']} {t['position']}"
        weight = "-" if t["weight"] is None else f"{t['weight']}%"
        share = "-" if t["share"] is None else f"{100 * t['share']:.1f}%"
        lines.append(f"  {t['name']:<{width}}  {role:<10}  {weight:>6}  {share:>6}  "
                     f"{t['served_window']:>7.0f}  {t['fallback_served_window']:>11.0f}  "
                     f"{t['provider']}/{t['model']}")
    return lines


def format_status(status: dict[str, Any]) -> str:
    """The whole table."""
    state = "ready" if status["ready"] else "syncing"
    lines = [f"gateway {state}, {len(status['endpoints'])} endpoint(s), shares over the last "
             f"{status['window_seconds']:.0f}s", ""]
    for ep in status["endpoints"]:
        lines += [*format_endpoint(ep, status["window_seconds"]), ""]
    for key, reason in status.get("rejected", {}).items():
        lines.append(f"refused config for {key} (last good kept): {reason}")
    return "\n".join(lines).rstrip() + "\n"


def run(args: argparse.Namespace) -> int:
    """Print the status; 1 when the gateway cannot be read."""
    try:
        status = fetch(args.gateway, args.token, args.timeout)
    except urllib.error.HTTPError as exc:
        print(f"error: {args.gateway}/ui/status.json answered {exc.code}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the status of {args.gateway}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        sys.stdout.write(format_status(status))
    return 0
