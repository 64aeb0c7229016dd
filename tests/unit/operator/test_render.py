"""render.py: the ConfigMap manifest, byte-stable, and its runtime fields kept apart."""

from __future__ import annotations

import datetime
import json

from switchyard_operator import render
from tests.unit.operator.helpers import endpoint_and_config, manifest


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
    full = render.with_runtime_fields(pure, endpoint, stamp)
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
