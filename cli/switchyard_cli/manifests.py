"""Reading manifest files for the CLI: files or folders of multi-document YAML/JSON.

Raises `UnreadableInput` (exit code 2 in the commands) for a missing file or bad YAML,
with a message that names the file; never a traceback.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import yaml

from switchyard_schema import manifests as schema_manifests

SUFFIXES = (".yaml", ".yml", ".json")


class UnreadableInput(Exception):
    """A path that does not exist, cannot be read, or is not valid YAML."""


@dataclasses.dataclass(frozen=True)
class Document:
    """One YAML document and where it came from."""

    source: str  # "path" or "path#3" for the third document of a file
    body: Any


def expand(paths: Sequence[str]) -> list[pathlib.Path]:
    """Files named directly, plus the manifest files inside named folders (sorted)."""
    files: list[pathlib.Path] = []
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()))
        elif path.is_file() or raw == "-":
            files.append(path)
        else:
            raise UnreadableInput(f"{raw}: no such file or directory")
    return files


def read(paths: Sequence[str]) -> Iterator[Document]:
    """Every non-empty document in the given files and folders."""
    for path in expand(paths):
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
            docs = list(schema_manifests.load_all(text))
        except (OSError, UnicodeDecodeError) as exc:
            raise UnreadableInput(f"{path}: cannot read: {exc}") from exc
        except yaml.YAMLError as exc:
            raise UnreadableInput(f"{path}: invalid YAML: {exc}") from exc
        many = len(docs) > 1
        for i, body in enumerate(docs, start=1):
            if body is not None:
                yield Document(f"{path}#{i}" if many else str(path), body)
