"""Resolve a target's `apiKey` reference to an `ApiKey`, by reference, in one place.

Two kinds of reference (DESIGN.md): `envVar` (the gateway's own environment, read once at
start-up; in cluster mode only names on the `--allowed-env-keys` list, whose hosts
`config/trust.py` checks on every config loaded) and `secretKeyRef` (a
key of a Secret in the endpoint's namespace). Sources fill the Secret table: the standalone
file source from v1 Secret manifests beside the endpoints (`secret_entries`), the in-cluster
source (`config/cluster.py`) with the referenced keys of labelled Secrets only. Both decode
values with `switchyard_schema.decode_secret_value`, so one Secret gives one key in either
mode. Each fill rebuilds the table and swaps it as one reference, so a rotation applies to
the next request without a restart.

A reference that does not resolve raises `MissingCredential` at once: no request is sent
and it is not counted as an attempt. Key values never reach a log line or an error text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from switchyard_gateway import redaction
from switchyard_gateway.api_key import ApiKey
from switchyard_gateway.errors import MissingCredential
from switchyard_schema import ApiKeyRef, BadSecretValue, decode_secret_value, secret_text

#: (namespace, secret name, key) -> value
SecretTable = Mapping[tuple[str, str, str], ApiKey]


class Credentials:
    """The key table the attempt runner reads. Cheap lookups; no lookup chains."""

    def __init__(self, environ: Mapping[str, str], allow_env: Iterable[str] | None = None) -> None:
        """Snapshot the allowed env vars now; `allow_env=None` allows every name."""
        allowed = None if allow_env is None else frozenset(allow_env)
        self._env: Mapping[str, ApiKey] = MappingProxyType({
            name: ApiKey(value)
            for name, value in environ.items()
            if value and (allowed is None or name in allowed)
        })
        self._env_allowed = allowed
        self._secrets: SecretTable = MappingProxyType({})
        #: Env keys resolved at least once: only those can have been sent (and echoed).
        self._env_sent: set[str] = set()
        self._previous: tuple[ApiKey, ...] = ()
        self._redactor: redaction.Redactor | None = None

    def replace_secrets(self, table: SecretTable) -> None:
        """Install a new Secret table (every value the source holds), as one swap."""
        # The swapped-out values stay redacted for one more generation: an attempt sent
        # with a key just before its rotation may still have it echoed.
        self._previous = tuple(self._secrets.values())
        self._secrets = MappingProxyType(dict(table))
        self._redactor = None

    def redactor(self) -> redaction.Redactor:
        """A `Redactor` over every Secret value held (and those of the table before the
        last swap) and every env key sent so far.

        Built on first use after a change (a Secret swap, an env key resolved the first
        time) and kept, so the error path pays for it once per change.
        """
        found = self._redactor
        if found is None:
            values = [k.reveal() for k in (*self._secrets.values(), *self._previous)]
            values.extend(self._env[name].reveal() for name in self._env_sent)
            found = self._redactor = redaction.Redactor(values)
        return found

    def resolve(self, namespace: str, ref: ApiKeyRef | None, target: str = "") -> ApiKey | None:
        """The key for `ref` in `namespace`; None when the target needs no key.

        Raises `MissingCredential` naming the reference (never a value).
        """
        if ref is None:
            return None
        if ref.env_var is not None:
            key = self._env.get(ref.env_var)
            if key is None:
                why = ("is not on the gateway's --allowed-env-keys list"
                       if self._env_allowed is not None and ref.env_var not in self._env_allowed
                       else "is not set")
                raise MissingCredential(f"env var {ref.env_var} {why}", target=target)
            if ref.env_var not in self._env_sent:
                self._env_sent.add(ref.env_var)
                self._redactor = None
            return key
        if ref.secret_key_ref is not None:
            s = ref.secret_key_ref
            key = self._secrets.get((namespace, s.name, s.key))
            if key is None:
                raise MissingCredential(
                    f"key {s.key!r} of Secret {namespace}/{s.name} not found", target=target)
            return key
        raise MissingCredential("apiKey names neither envVar nor secretKeyRef", target=target)


def secret_entries(manifest: Mapping[str, object], default_namespace: str) -> SecretTable:
    """The (namespace, name, key) -> ApiKey entries of one v1 Secret manifest.

    `stringData` wins over `data` for the same key, as in the API server. Values are read
    by `switchyard_schema.decode_secret_value` / `secret_text`, the rule cluster mode uses
    too; a value it refuses is skipped (the reference then reports the key as missing).
    """
    metadata = manifest.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        return {}
    name = str(metadata["name"])
    namespace = str(metadata.get("namespace") or default_namespace)
    out: dict[tuple[str, str, str], ApiKey] = {}
    data = manifest.get("data")
    if isinstance(data, Mapping):
        for key, value in data.items():
            try:
                out[(namespace, name, str(key))] = ApiKey(decode_secret_value(str(value)))
            except BadSecretValue:
                continue
    string_data = manifest.get("stringData")
    if isinstance(string_data, Mapping):
        for key, value in string_data.items():
            try:
                out[(namespace, name, str(key))] = ApiKey(secret_text(str(value)))
            except BadSecretValue:
                continue
    return out
