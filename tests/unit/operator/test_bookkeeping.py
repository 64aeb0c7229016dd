"""bookkeeping.py: Kopf's diff base in memory and its progress marker, on Kopf's own types.

What they must keep: Kopf sees a spec, label or annotation change as a change and a
status write as none (so the handler runs exactly when it did with the annotation
storage), and a retry record still goes out with its marker. What they save: the one
bookkeeping PATCH per handled endpoint.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf

from switchyard_operator import bookkeeping

PREFIX = "switchyard.dev"


def _body(**changes: Any) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
        "metadata": {"name": "chat", "namespace": "team", "uid": "u-1", "labels": {"a": "1"},
                     "annotations": {}, "resourceVersion": "1"},
        "spec": {"task": "chat"}, "status": {}}
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    return kopf.Body(copy.deepcopy(raw))  # type: ignore[arg-type]


def _handled(storage: bookkeeping.MemoryDiffBase, body: kopf.Body) -> None:
    storage.store(body=body, patch=kopf.Patch(), essence=storage.build(body=body))


def test_an_endpoint_never_handled_has_no_diff_base() -> None:
    assert bookkeeping.MemoryDiffBase(PREFIX).fetch(body=_body()) is None


def test_a_status_or_version_change_is_no_change_but_spec_labels_and_annotations_are() -> None:
    storage = bookkeeping.MemoryDiffBase(PREFIX)
    _handled(storage, _body())
    same = _body(status={"conditions": [{"type": "Ready"}]}, metadata__resourceVersion="9")
    assert storage.fetch(body=same) == storage.build(body=same)
    # Our own bookkeeping annotations (a retry record) are not part of the essence.
    ours = _body(metadata__annotations={f"{PREFIX}/endpoint_changed": "{}"})
    assert storage.fetch(body=ours) == storage.build(body=ours)
    for changed in (_body(spec={"task": "embeddings"}), _body(metadata__labels={"a": "2"}),
                    _body(metadata__annotations={"team": "x"})):
        assert storage.fetch(body=changed) != storage.build(body=changed)


def test_the_store_writes_nothing_into_the_patch_and_a_deleted_endpoint_is_forgotten() -> None:
    storage = bookkeeping.MemoryDiffBase(PREFIX)
    patch = kopf.Patch()
    storage.store(body=_body(), patch=patch, essence=storage.build(body=_body()))
    assert not patch
    assert len(storage) == 1
    storage.forget("u-1")
    assert len(storage) == 0
    assert storage.fetch(body=_body()) is None


def test_a_record_purged_in_its_own_cycle_leaves_no_marker_to_patch() -> None:
    storage = bookkeeping.ProgressStorage(prefix=PREFIX)
    body, patch = _body(), kopf.Patch()
    storage.store(key="h", record={"started": "t", "retries": 1}, body=body,  # type: ignore[arg-type,typeddict-item]
                  patch=patch)
    assert f"{PREFIX}/kopf-managed" in patch["metadata"]["annotations"]
    storage.purge(key="h", body=body, patch=patch)  # type: ignore[arg-type]
    assert not patch  # nothing to send: no PATCH


def test_a_record_that_stays_keeps_its_marker() -> None:
    storage = bookkeeping.ProgressStorage(prefix=PREFIX)
    body, patch = _body(), kopf.Patch()
    storage.store(key="h", record={"started": "t", "retries": 1}, body=body,  # type: ignore[arg-type,typeddict-item]
                  patch=patch)
    storage.purge(key="other", body=body, patch=patch)  # type: ignore[arg-type]
    annotations = patch["metadata"]["annotations"]
    assert f"{PREFIX}/kopf-managed" in annotations
    assert f"{PREFIX}/h" in annotations
