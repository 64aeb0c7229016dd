"""config/trust.py: a rendered ConfigMap is served only when signed and within the policy."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import pathlib
from typing import Any

import pytest
import yaml

from switchyard_gateway.config import trust
from switchyard_gateway.config.sources import FileSource
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.credentials import Credentials
from switchyard_kube.client import NotFound
from switchyard_schema import EndpointConfig, config_json, signing
from switchyard_schema.policy import PlatformPolicy
from tests.unit.gateway.endpoints import config, manifest, target

KEYS = signing.SigningKeys(b"c" * 32, b"p" * 32)
POLICY = PlatformPolicy.parse("", "OPENAI_API_KEY=api.openai.com")


def _configmap(cfg: EndpointConfig, key: bytes | None = KEYS.current, uid: str = "u1",
               payload: str | None = None) -> dict[str, Any]:
    data = payload if payload is not None else config_json(cfg)
    annotations = {}
    if key is not None:
        annotations[signing.ANNOTATION] = signing.sign(
            key, cfg.namespace, cfg.name, uid, config_json(cfg).encode())
    return {"metadata": {"name": f"gwe-{cfg.name}", "namespace": cfg.namespace,
                         "annotations": annotations,
                         "ownerReferences": [{"kind": "GatewayEndpoint", "controller": True,
                                              "name": cfg.name, "uid": uid}]},
            "data": {"endpoint.json": data}}


def _checker(keys: signing.SigningKeys | None = KEYS) -> trust.Trust:
    checker = trust.Trust(POLICY)
    checker.keys = keys
    return checker


def _reason(checker: trust.Trust, cm: dict[str, Any], cfg: EndpointConfig) -> str:
    with pytest.raises(trust.Untrusted) as info:
        checker.check(cm, cfg)
    assert info.value.reason in trust.REASONS
    return info.value.reason


def test_a_configmap_signed_by_the_operator_is_served() -> None:
    cfg = config()
    _checker().check(_configmap(cfg), cfg)
    _checker().check(_configmap(cfg, key=KEYS.previous), cfg)  # rotation: previous key


def test_tampered_configmap_with_recomputed_hash_is_refused() -> None:
    """Issue 14's attack: a tenant rewrites baseUrl and the (public) hash, keeps the signature."""
    cfg = config()
    evil = config(split=[target("primary", 100, provider="openai-compatible",
                                baseUrl="http://127.0.0.1:9/v1")])
    cm = _configmap(cfg, payload=config_json(evil))
    assert _reason(_checker(), cm, evil) == trust.BAD_SIGNATURE


def test_unsigned_unknown_key_other_uid_and_no_key_are_refused() -> None:
    cfg = config()
    assert _reason(_checker(), _configmap(cfg, key=None), cfg) == trust.UNSIGNED
    assert _reason(_checker(), _configmap(cfg, key=b"x" * 32), cfg) == trust.BAD_SIGNATURE
    cm = _configmap(cfg)
    cm["metadata"]["ownerReferences"][0]["uid"] = "u2"  # a recreated endpoint of that name
    assert _reason(_checker(), cm, cfg) == trust.BAD_SIGNATURE
    assert _reason(_checker(keys=None), _configmap(cfg), cfg) == trust.BAD_SIGNATURE


def test_signed_but_outside_the_policy_is_refused() -> None:
    """Defence in depth: even a signed config must keep env keys on their hosts."""
    cfg = config(split=[target("primary", 100, provider="openai-compatible",
                               baseUrl="http://127.0.0.1:9/v1")])
    assert _reason(_checker(), _configmap(cfg), cfg) == trust.POLICY


async def test_standalone_file_source_applies_the_policy_given(tmp_path: pathlib.Path) -> None:
    docs = [manifest(), manifest(name="exfil", split=[target(
        "primary", 100, provider="openai-compatible", baseUrl="http://127.0.0.1:9/v1")])]
    (tmp_path / "e.yaml").write_text(yaml.safe_dump_all(docs))
    store = ConfigStore()
    await FileSource(tmp_path, store, Credentials({}), policy=POLICY).sync()
    assert store.resolve("chat") is not None and store.resolve("exfil") is None
    assert "bound to api.openai.com" in store.rejected()["default/exfil"]
    open_store = ConfigStore()  # no policy flag: the single-tenant default
    await FileSource(tmp_path, open_store, Credentials({})).sync()
    assert open_store.resolve("exfil") is not None


def test_an_older_signed_payload_replayed_is_refused() -> None:
    """A tenant keeps an old ConfigMap of ours (validly signed) and puts it back."""
    checker = _checker()
    old, new = config(), config(split=[target("primary", 100, model="gpt-6")])
    old = old.model_copy(update={"generation": 1})
    new = new.model_copy(update={"generation": 2})
    checker.check(_configmap(old), old)
    checker.check(_configmap(new), new)
    assert _reason(checker, _configmap(old), old) == trust.REPLAYED
    checker.check(_configmap(new), new)  # the current one still passes
    recreated = _configmap(old, uid="u2")  # a new endpoint of that name starts again
    checker.check(recreated, old)


class _SecretApi:
    """Answers the one GET the key source sends, from `data` (None: 404)."""

    def __init__(self) -> None:
        self.data: dict[str, str] | None = None
        self.paths: list[str] = []

    async def request(self, method: str, path: str) -> Any:
        self.paths.append(f"{method} {path}")
        if self.data is None:
            raise NotFound(404, "NotFound", "secrets not found")
        return {"data": self.data}


async def test_key_source_rereads_and_asks_for_a_recheck_on_change() -> None:
    api, checker = _SecretApi(), trust.Trust(POLICY)

    async def recheck() -> None:
        raise AssertionError("refresh() alone never rechecks")

    client: Any = api
    source = trust.SigningKeySource(client, checker, "sy", "key", recheck, interval=0)
    assert not await source.refresh() and checker.keys is None  # missing: logged, kept
    api.data = {"current": base64.b64encode(b"c" * 32).decode()}
    assert await source.refresh() and checker.keys == signing.SigningKeys(b"c" * 32)
    assert not await source.refresh()  # unchanged
    api.data = {"current": base64.b64encode(b"n" * 32).decode(), "previous": api.data["current"]}
    assert await source.refresh() and checker.keys.accepted() == (b"n" * 32, b"c" * 32)
    api.data = {"current": "short"}
    assert not await source.refresh() and checker.keys.accepted()[0] == b"n" * 32
    assert set(api.paths) == {"GET /api/v1/namespaces/sy/secrets/key"}


async def test_key_source_watch_rechecks_when_the_keys_change() -> None:
    checker, rechecks = trust.Trust(POLICY), []

    async def recheck() -> None:
        rechecks.append(checker.keys)

    class Closing(_SecretApi):
        async def close(self) -> None:
            pass

    api = Closing()
    client: Any = api
    source = trust.SigningKeySource(client, checker, "sy", "key", recheck, interval=0.01)
    task = asyncio.create_task(source.watch())
    await asyncio.sleep(0.05)
    assert rechecks == []  # no key yet, nothing to recheck
    api.data = {"current": base64.b64encode(b"c" * 32).decode()}
    for _ in range(100):
        await asyncio.sleep(0.01)
        if rechecks:
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert rechecks == [signing.SigningKeys(b"c" * 32)]
