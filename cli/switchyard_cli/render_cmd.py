"""`switchyard render FILE...`: print the ConfigMaps the operator will create, as YAML.

Byte-stable: the same input gives the same output. Runtime fields the operator adds
(ownerReferences, the render timestamp) are left out. Exit 1 on an invalid endpoint, 2 on
unreadable input.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from switchyard_cli import manifests
from switchyard_operator import render
from switchyard_schema import InvalidEndpoint, is_ours, normalize, parse_endpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's flags."""
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="manifests ('-' = stdin)")
    parser.add_argument(
        "--namespace", default="default", help="namespace for manifests that name none"
    )


def run(args: argparse.Namespace) -> int:
    """Render every GatewayEndpoint in the given paths."""
    rendered: list[str] = []
    try:
        for doc in manifests.read(args.paths):
            if not is_ours(doc.body):
                continue
            try:
                endpoint = parse_endpoint(doc.body, default_namespace=args.namespace)
            except InvalidEndpoint as exc:
                print(f"switchyard render: {doc.source}: invalid:", file=sys.stderr)
                for problem in exc.problems:
                    print(f"  {problem}", file=sys.stderr)
                return 1
            configmap = render.configmap(endpoint, normalize(endpoint))
            rendered.append(yaml.safe_dump(configmap, sort_keys=True, width=1_000_000))
    except manifests.UnreadableInput as exc:
        print(f"switchyard render: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write("---\n".join(rendered))
    return 0
