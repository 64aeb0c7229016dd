"""`switchyard` command line: one subcommand per module, dispatched from here.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their subcommand runs, so `switchyard validate` in a CI
pipeline does not pay for loading the gateway's HTTP stack or Kopf, and `switchyard demo`
alone needs the `demo` extra (the OpenAI SDK, cryptography for its local CA). Options are
never abbreviated: with argparse's prefix matching, `--auth x` would silently mean
`--auth-tokens-file x`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("switchyard_cli.validate_cmd", "check GatewayEndpoint manifests offline"),
    "render": ("switchyard_cli.render_cmd", "print the ConfigMaps the operator would create"),
    "gateway": (
        "switchyard_cli.gateway_cmd",
        "run the gateway (standalone --config or in-cluster)",
    ),
    "operator": ("switchyard_cli.operator_cmd", "run the Kopf operator"),
    "demo": ("switchyard_cli.demo_cmd", "run the whole system on this machine with fake providers"),
    "status": ("switchyard_cli.status_cmd", "show endpoints, weights and observed shares"),
}


#: subcommand -> the extra that installs what it needs beyond the base dependencies
EXTRAS = {"demo": "demo"}


def _load(command: str) -> ModuleType:
    """The subcommand's module; a missing optional dependency exits 2 naming the extra."""
    try:
        return importlib.import_module(COMMANDS[command][0])
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get(command)
        if extra is None:
            raise
        sys.stderr.write(
            f"switchyard {command}: needs the {exc.name!r} package: "
            f"pip install 'switchyard[{extra}]'\n"
        )
        raise SystemExit(2) from None


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The top-level parser, with the subcommand named in argv fully wired."""
    parser = argparse.ArgumentParser(
        prog="switchyard", description="Kubernetes-native AI gateway.", allow_abbrev=False
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(
            name, help=help_text, description=help_text, allow_abbrev=False
        )
        if name in argv:
            _load(name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `switchyard` console script; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help()
        return 2
    module = _load(args.command)
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
