"""Standalone manifests: parsing many documents, Secrets, rejections, reloads."""

from __future__ import annotations

import pathlib

import yaml

from switchyard_gateway.config.sources import FileSource, parse_files
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.credentials import Credentials
from tests.unit.gateway.endpoints import manifest, target

SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"},
          "stringData": {"api-key": "sk-file"}}


def _yaml(*docs: object) -> bytes:
    return yaml.safe_dump_all(list(docs)).encode()


def test_multi_document_file_with_secret_and_default_namespace() -> None:
    snap = parse_files({"a.yaml": _yaml(manifest(namespace=None), SECRET,
                                        manifest(name="other", namespace="team-a"))},
                       "default")
    assert set(snap.configs) == {"default/chat", "team-a/other"}
    assert ("default", "k", "api-key") in snap.secrets
    assert not snap.rejected and not snap.broken_files


def test_invalid_endpoint_and_duplicates_are_rejected() -> None:
    bad = manifest(name="bad", split=[target("a", 60), target("b", 30)])
    snap = parse_files({"a.yaml": _yaml(bad, manifest()), "b.json": _yaml(manifest())},
                       "default")
    assert "default/bad" in snap.rejected and "90" in snap.rejected["default/bad"]
    assert "more than once" in snap.rejected["default/chat"]


def test_broken_yaml_is_a_broken_file() -> None:
    snap = parse_files({"a.yaml": b"kind: [unclosed"}, "default")
    assert "a.yaml" in snap.broken_files


async def test_reload_keeps_last_good_and_removes_deleted(tmp_path: pathlib.Path) -> None:
    store = ConfigStore()
    creds = Credentials({})
    path = tmp_path / "endpoints.yaml"
    path.write_bytes(_yaml(manifest(split=[target("a", 100)]), manifest(name="gone")))
    source = FileSource(tmp_path, store, creds)
    await source.sync()
    assert store.resolve("chat") is not None and store.resolve("gone") is not None

    path.write_bytes(_yaml(manifest(split=[target("a", 50), target("b", 40)])))
    assert await source.poll()
    live = store.resolve("chat")
    assert live is not None and live.split[0].name == "a" and len(live.split) == 1
    assert "default/chat" in store.rejected()
    assert store.resolve("gone") is None

    path.write_bytes(b"spec: [broken")
    assert await source.poll()
    assert store.resolve("chat") is live

    path.write_bytes(_yaml(manifest(split=[target("b", 100)])))
    assert await source.poll()
    live = store.resolve("chat")
    assert live is not None and live.split[0].name == "b"
    assert not store.rejected()
    assert not await source.poll()  # unchanged files are not parsed again
