"""config/cluster.py: one watch event re-reads only the ConfigMap it names.

The in-cluster source used to re-check every ConfigMap on every event: a bulk apply of
1,000 endpoints (about five events each) cost 5,000 passes over up to 1,000 ConfigMaps,
18 s of gateway CPU, and quadratic time at 10,000. The callbacks the reflectors call are
driven directly here (no API server: nothing in them does I/O for these objects).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchyard_gateway.config.cluster import ClusterSource
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.credentials import Credentials
from switchyard_kube.client import Client, Connection
from switchyard_schema import config_json
from tests.unit.gateway.endpoints import config

NS = "team"


def _endpoint(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"}}


def _configmap(name: str, version: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": f"gwe-{name}", "namespace": NS, "resourceVersion": version,
                         "labels": {"app.kubernetes.io/managed-by": "switchyard-operator"},
                         "ownerReferences": [{"apiVersion": "switchyard.dev/v1alpha1",
                                              "kind": "GatewayEndpoint", "controller": True,
                                              "name": name, "uid": f"uid-{name}"}]},
            "data": {"endpoint.json": config_json(config(name=name, namespace=NS))}}


def _synced(store: ConfigStore, names: list[str]) -> ClusterSource:
    source = ClusterSource(Client(Connection("https://127.0.0.1:1")), store, Credentials({}),
                           namespaces=[NS])

    async def first_sync() -> None:
        await source._replacer("endpoints", NS)([_endpoint(n) for n in names])
        await source._replacer("configmaps", NS)([_configmap(n) for n in names])
        await source._replacer("secrets", NS)([])
        source._synced = True
        source._reconcile()

    asyncio.run(first_sync())
    return source


def test_a_new_endpoint_is_served_after_looking_at_its_own_configmap_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = ConfigStore(NS)
    source = _synced(store, [f"e{i}" for i in range(200)])
    assert len(store.snapshot()) == 200
    looked: list[str] = []
    check = source._accepted_owner

    def spy(ns: str, cm_name: str, cm: dict[str, Any]) -> str | None:
        looked.append(cm_name)
        return check(ns, cm_name, cm)

    monkeypatch.setattr(source, "_accepted_owner", spy)

    async def events() -> None:
        await source._eventer("configmaps")("ADDED", _configmap("new"))  # before its owner
        await source._eventer("endpoints")("ADDED", _endpoint("new"))
        await source._eventer("endpoints")("MODIFIED", _endpoint("e7"))  # a status write

    asyncio.run(events())
    assert f"{NS}/new" in store.snapshot()
    assert len(store.snapshot()) == 201
    assert looked == ["gwe-new", "gwe-new", "gwe-e7"]


def test_a_deleted_endpoint_or_configmap_stops_being_served_and_others_stay() -> None:
    store = ConfigStore(NS)
    source = _synced(store, ["a", "b", "c"])

    async def events() -> None:
        await source._eventer("endpoints")("DELETED", _endpoint("a"))
        await source._eventer("configmaps")("DELETED", _configmap("b"))

    asyncio.run(events())
    assert sorted(store.snapshot()) == [f"{NS}/c"]
