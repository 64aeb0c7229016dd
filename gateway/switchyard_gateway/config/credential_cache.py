"""The credential Secrets the in-cluster source has seen, keeping only the values it serves.

Called by `config/cluster.py` (under its lock) with what the Secret watch and its GETs
return. For each Secret it keeps the resourceVersion and the key names (needed to know a
key exists), but a value only while some served endpoint references that
(namespace, name, key): an unreferenced provider key is dropped at intake and never sits
in this process's memory. `want()` takes the referenced set after every config change,
drops what is no longer referenced and names the Secrets to GET because a newly
referenced key was dropped earlier. Until the first `want()` (the first sync, when no
config is applied yet) every value is kept, so start-up needs no GET per Secret.

A Secret without the `switchyard.dev/credential=true` label is never taken, whatever
brought it (the watch's selector should already have filtered it out; a GET does not).
Values are decoded by `switchyard_schema.decode_secret_value`, the rule file mode uses.
Pure: no I/O; never logs or raises with a value.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from switchyard_gateway.api_key import ApiKey
from switchyard_schema import BadSecretValue, decode_secret_value, is_credential

log = logging.getLogger(__name__)

SecretKey = tuple[str, str]  # (namespace, name)
Ref = tuple[str, str, str]  # (namespace, name, key)


@dataclasses.dataclass(frozen=True, slots=True)
class _Seen:
    """One labelled Secret: its version, its key names, and the values kept of it."""

    version: str
    keys: frozenset[str]
    values: Mapping[str, ApiKey]
    #: keys whose value does not decode (a GET would not change that; the next version may)
    bad: frozenset[str] = frozenset()


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def secret_key(obj: Mapping[str, Any]) -> SecretKey:
    """(namespace, name) of a Secret object."""
    meta = _meta(obj)
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


class CredentialCache:
    """Labelled Secrets by (namespace, name), holding only referenced values."""

    def __init__(self) -> None:
        self._seen: dict[SecretKey, _Seen] = {}
        self._wanted: frozenset[Ref] | None = None  # None: not known yet, keep every value

    def take(self, obj: Mapping[str, Any]) -> None:
        """Record a Secret from the watch or a LIST; one without the label is forgotten."""
        key = secret_key(obj)
        if not is_credential(_meta(obj).get("labels")):
            self._seen.pop(key, None)
            return
        data = obj.get("data")
        data = data if isinstance(data, Mapping) else {}
        values: dict[str, ApiKey] = {}
        bad: set[str] = set()
        for name, raw in data.items():
            if self._wanted is not None and (*key, str(name)) not in self._wanted:
                continue
            try:
                values[str(name)] = ApiKey(decode_secret_value(str(raw)))
            except BadSecretValue as exc:
                bad.add(str(name))
                log.warning("Secret %s/%s key %r: %s", *key, name, exc)
        version = str(_meta(obj).get("resourceVersion", ""))
        self._seen[key] = _Seen(version, frozenset(str(k) for k in data), values, frozenset(bad))

    def forget(self, key: SecretKey) -> None:
        """A Secret was deleted (or lost its label)."""
        self._seen.pop(key, None)

    def replace(self, namespace: str, items: Iterable[Mapping[str, Any]]) -> None:
        """A full LIST of one namespace ('' = every namespace) replaces what it covers."""
        for key in [k for k in self._seen if not namespace or k[0] == namespace]:
            del self._seen[key]
        for obj in items:
            self.take(obj)

    def take_fetched(self, obj: Mapping[str, Any]) -> bool:
        """Merge a Secret fetched by GET; False when the watch knows another version.

        The watch stays the authority: a GET answer is used only when it is the very
        version the watch last delivered (else the watch has delivered, or will deliver,
        the newer one, and `take` then keeps what is wanted by then).
        """
        key = secret_key(obj)
        seen = self._seen.get(key)
        version = str(_meta(obj).get("resourceVersion", ""))
        if seen is None or seen.version != version:
            return False
        self.take(obj)
        return True

    def want(self, refs: Iterable[Ref]) -> list[SecretKey]:
        """Keep only the values of `refs`; return the Secrets to GET for missing ones.

        A Secret is named when it is labelled, has the referenced key, and its value was
        dropped before it was referenced. A key that does not exist is not fetched: the
        reference stays unresolved (`MissingCredential`) until the watch brings it.
        """
        wanted = frozenset(refs)
        self._wanted = wanted
        fetch: set[SecretKey] = set()
        for key, seen in list(self._seen.items()):
            kept = {k: v for k, v in seen.values.items() if (*key, k) in wanted}
            if len(kept) != len(seen.values):
                self._seen[key] = dataclasses.replace(seen, values=kept)
        for ns, name, k in wanted:
            held = self._seen.get((ns, name))
            if held is None or k not in held.keys or k in held.values or k in held.bad:
                continue
            fetch.add((ns, name))
        return sorted(fetch)

    def table(self) -> dict[Ref, ApiKey]:
        """(namespace, name, key) -> value for every referenced value held."""
        wanted = self._wanted
        return {
            (*key, k): v
            for key, seen in self._seen.items()
            for k, v in seen.values.items()
            if wanted is None or (*key, k) in wanted
        }

    def held(self) -> frozenset[Ref]:
        """Every (namespace, name, key) whose value is in memory (for tests and debugging)."""
        return frozenset((*key, k) for key, seen in self._seen.items() for k in seen.values)
