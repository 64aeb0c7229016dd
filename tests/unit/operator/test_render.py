"""render.py: the ConfigMap manifest, byte-stable, and its runtime fields kept apart."""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

from switchyard_operator import render
from switchyard_schema import signing
from tests.unit.operator.helpers import endpoint_and_config, manifest

KEYS = signing.SigningKeys(b"s" * 32)


def test_configmap_name_labels_hash_and_payload() -> None:
    endpoint, config = endpoint_and_config()
    cm = render.configmap(endpoint, config)
    assert cm["metadata"]["name"] == "gwe-chat"
    assert cm["metadata"]["namespace"] == "team-a"
    assert cm["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "switchyard-operator",
        "switchyard.dev/endpoint": "chat",
    }
    assert cm["metadata"]["annotations"] == {"switchyard.dev/spec-hash": config.spec_hash}
    assert list(cm["data"]) == ["endpoint.json"]
    payload = json.loads(cm["data"]["endpoint.json"])
    assert payload["specHash"] == config.spec_hash
    assert payload["generation"] == 3
    assert [t["name"] for t in payload["fallbacks"]] == [
        "openai-compatible-llama",
        "openai-gpt-5-mini",
    ]
    assert "ownerReferences" not in cm["metadata"]


def test_render_is_byte_stable_and_holds_no_key_material() -> None:
    first = render.configmap(*endpoint_and_config())
    second = render.configmap(*endpoint_and_config())
    assert first == second
    text = first["data"]["endpoint.json"]
    assert "secretKeyRef" in text and "OPENAI_KEY" in text  # references only
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def test_weight_change_changes_hash() -> None:
    obj = manifest()
    obj["spec"]["trafficSplit"][0]["weight"] = 90
    obj["spec"]["trafficSplit"][1]["weight"] = 10
    _, before = endpoint_and_config()
    _, after = endpoint_and_config(obj)
    assert before.spec_hash != after.spec_hash


def test_runtime_fields_are_added_to_a_copy() -> None:
    endpoint, config = endpoint_and_config()
    pure = render.configmap(endpoint, config)
    stamp = render.rfc3339_now(datetime.datetime(2025, 1, 2, 3, 4, 5, 678901, datetime.UTC))
    assert stamp == "2025-01-02T03:04:05.678901Z"
    full = render.with_runtime_fields(pure, endpoint, stamp, KEYS.current)
    assert "ownerReferences" not in pure["metadata"]
    assert full["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "switchyard.dev/v1alpha1",
            "kind": "GatewayEndpoint",
            "name": "chat",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert full["metadata"]["annotations"]["switchyard.dev/rendered-at"] == stamp
    assert render.controller_uid(full) == "uid-1"
    assert render.controller_uid(pure) is None
    payload = full["data"]["endpoint.json"].encode()
    signature = full["metadata"]["annotations"][signing.ANNOTATION]
    assert signing.verify(KEYS, "team-a", "chat", "uid-1", payload, signature)
    assert render.drift(full, full) == []


def _rendered() -> tuple[Any, dict[str, Any]]:
    endpoint, config = endpoint_and_config()
    full = render.with_runtime_fields(
        render.configmap(endpoint, config), endpoint, "t", KEYS.current
    )
    return endpoint, full


def test_drift_names_what_someone_else_changed() -> None:
    endpoint, desired = _rendered()
    live = copy.deepcopy(desired)
    live["metadata"]["annotations"]["switchyard.dev/rendered-at"] = "earlier"
    live["metadata"]["labels"]["extra"] = "kept"
    assert render.drift(live, desired) == []  # timestamps and others' additions are fine
    live["data"]["endpoint.json"] = live["data"]["endpoint.json"].replace("gpt-5", "gpt-6")
    del live["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert render.drift(live, desired) == ["data", "label app.kubernetes.io/managed-by"]
    assert render.tampered(live, endpoint, KEYS, render.drift(live, desired))


def test_an_older_render_of_our_own_is_an_update_not_a_repair() -> None:
    endpoint, desired = _rendered()
    obj = manifest()
    obj["spec"]["trafficSplit"][0]["weight"] = 90
    obj["spec"]["trafficSplit"][1]["weight"] = 10
    _, config = endpoint_and_config(obj)
    older = render.with_runtime_fields(
        render.configmap(endpoint, config), endpoint, "t", KEYS.current
    )
    changed = render.drift(older, desired)
    assert set(changed) == {"data", "annotation switchyard.dev/spec-hash",
                            "annotation switchyard.dev/signature"}
    assert not render.tampered(older, endpoint, KEYS, changed)
    resigned = copy.deepcopy(older)  # a tenant's edit that keeps our (old) signature
    resigned["data"]["endpoint.json"] = desired["data"]["endpoint.json"]
    assert render.tampered(resigned, endpoint, KEYS, render.drift(resigned, desired))


def test_an_unsigned_render_from_an_older_operator_is_an_update() -> None:
    endpoint, desired = _rendered()
    older = copy.deepcopy(desired)
    del older["metadata"]["annotations"][signing.ANNOTATION]
    changed = render.drift(older, desired)
    assert changed == ["annotation switchyard.dev/signature"]
    assert not render.tampered(older, endpoint, KEYS, changed)
