"""Kopf's bookkeeping, without an API write per handled endpoint.

Configured by `handlers.configure`: `MemoryDiffBase` as `settings.persistence.
diffbase_storage`, `ProgressStorage` as `progress_storage`.

`MemoryDiffBase`: Kopf's "last handled" state of each GatewayEndpoint, kept in memory as
a digest. Kopf keeps
the essence of what it last handled (spec, labels, annotations) to tell a real change
from a status write; its default storage writes it into an annotation, one PATCH per
handled change, which is a fifth of a bulk apply's API writes. The operator needs no
more than "changed or not": its one handler reconciles from scratch whatever the cause
(create, update or resume), so the state lives here as a digest per object UID.

After a restart or a leader change the table is empty: Kopf handles every endpoint again
(as a creation, since it knows no diff base; the handler is the same and writes nothing for
an endpoint already as rendered) and the digests are filled again. Memory: one UID and one
32-byte digest per live endpoint (a deleted one is forgotten).

`ProgressStorage`: Kopf's retry records in `switchyard.dev/` annotations, as before, but
the `switchyard.dev/kopf-managed` marker (which tells other Kopf operators to ignore that
prefix) is written only along with a record that stays: Kopf stores a record and purges
it in the same cycle when the handler succeeds at once, and the marker alone would
otherwise cost one PATCH per new endpoint.

Must not: keep the essence itself (10,000 specs), or drop a retry record.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import kopf


def _digest(essence: Any, prefix: str) -> bytes:
    # Our own bookkeeping annotations are not part of the essence (Kopf clears them from
    # what it stores; a body read here may still carry them).
    meta = dict(essence.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items()
                           if not k.startswith(prefix + "/")}
    text = json.dumps({**essence, "metadata": meta}, sort_keys=True, separators=(",", ":"),
                      default=str)
    return hashlib.blake2b(text.encode(), digest_size=32).digest()


class MemoryDiffBase(kopf.DiffBaseStorage):
    """A `kopf.DiffBaseStorage` that remembers a digest of the essence, never patches."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix  # of the operator's own annotations
        self._digests: dict[str, bytes] = {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        """The last handled essence: the current one when unchanged, an empty one when it
        changed (Kopf sees a difference and calls the handler), None when never handled."""
        uid = str(body.metadata.uid or "")
        known = self._digests.get(uid)
        if known is None:
            return None
        essence = self.build(body=body)
        if _digest(essence, self._prefix) == known:
            return essence
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Remember what was handled (nothing goes into `patch`)."""
        self._digests[str(body.metadata.uid or "")] = _digest(essence, self._prefix)

    def forget(self, uid: str) -> None:
        """Drop a deleted object's digest (`handlers.endpoint_deleted`)."""
        self._digests.pop(uid, None)

    def __len__(self) -> int:
        return len(self._digests)


class ProgressStorage(kopf.AnnotationsProgressStorage):
    """Kopf's annotation progress storage, marking its prefix only when a record stays."""

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        """Purge the record; drop the marker from `patch` when it would be written alone."""
        super().purge(key=key, body=body, patch=patch)
        metadata = patch.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        if not isinstance(metadata, dict) or not isinstance(annotations, dict):
            return
        marker = f"{self.prefix}/kopf-managed"
        ours = [k for k in annotations if k.startswith(f"{self.prefix}/") and k != marker]
        if marker in annotations and not ours:
            del annotations[marker]
            if not annotations:
                del metadata["annotations"]
            if not metadata:
                del patch["metadata"]
