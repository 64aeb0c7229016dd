"""Whether a rendered ConfigMap may be served: the operator's signature, then the platform policy.

Called by the in-cluster source (`cluster.py`, once per ConfigMap version, after the owner
and payload checks) through `Trust.check`; the standalone file source calls only the policy
half (`policy_problems`: files are the admin's own, unsigned). A tenant with `edit` in its
namespace can rewrite `gwe-<name>` and recompute its public hash; it cannot sign, because the
key lives in a Secret of the release namespace (`switchyard_schema.signing`). Each refusal
raises `Untrusted` with one of the bounded `REASONS` (the `refused` metric's label), and the
last good config stays live.

`SigningKeySource` keeps the keys fresh: it reads the Secret (one `get` by name, as RBAC
allows) before the ConfigMaps sync and again every `interval` seconds, and asks the cluster
source to check refused ConfigMaps again when the keys changed (a rotation, or a key that
appeared after the gateway started). Never logs, counts or returns key material.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from switchyard_kube import paths
from switchyard_kube.client import ApiError, Client
from switchyard_schema import KIND, EndpointConfig, InvalidEndpoint, Problem, contract, signing
from switchyard_schema.policy import PlatformPolicy, config_problems

log = logging.getLogger(__name__)

#: Every `refused{reason=...}` value: bounded, documented in docs/operations.md.
FORGED, INVALID, UNSIGNED, BAD_SIGNATURE, REPLAYED, POLICY = (
    "forged", "invalid", "unsigned", "bad_signature", "replayed", "policy")
REASONS = (FORGED, INVALID, UNSIGNED, BAD_SIGNATURE, REPLAYED, POLICY)


class Untrusted(InvalidEndpoint):
    """A ConfigMap the gateway will not serve; `reason` is one of `REASONS`."""

    def __init__(self, reason: str, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.reason = reason


def policy_problems(config: EndpointConfig, policy: PlatformPolicy) -> list[Problem]:
    """The platform-policy problems of a config (the operator checked the same rules)."""
    return config_problems(config, policy)


def _owner_uid(cm: Mapping[str, Any]) -> str:
    for ref in cm.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("controller") and ref.get("kind") == KIND:
            return str(ref.get("uid", ""))
    return ""


class Trust:
    """Signature and policy checks of rendered ConfigMaps, with the current signing keys."""

    def __init__(self, policy: PlatformPolicy) -> None:
        self.policy = policy
        self.keys: signing.SigningKeys | None = None
        #: endpoint key -> (owner UID, highest generation accepted): an older payload of
        #: ours, replayed by a tenant, verifies but must not roll the endpoint back. One
        #: entry per endpoint name seen; a recreated endpoint (new UID) starts again.
        self._latest: dict[str, tuple[str, int]] = {}

    def check(self, cm: Mapping[str, Any], config: EndpointConfig) -> None:
        """Raise `Untrusted` unless `cm` is signed by the operator and `config` is allowed.

        `config` is the parsed `endpoint.json` of `cm`, already matched to its owner.
        """
        meta = cm.get("metadata", {})
        signature = (meta.get("annotations") or {}).get(signing.ANNOTATION)
        where = f"ConfigMap {meta.get('namespace')}/{meta.get('name')}"
        if not signature:
            raise Untrusted(UNSIGNED, [Problem(
                signing.ANNOTATION, f"{where} is not signed by the operator")])
        payload = str((cm.get("data") or {}).get(contract.DATA_KEY, "")).encode()
        uid = _owner_uid(cm)
        if self.keys is None or not signing.verify(
            self.keys, config.namespace, config.name, uid, payload, str(signature)
        ):
            why = "no signing key is loaded" if self.keys is None else (
                "it was changed by someone other than the operator, or signed for another"
                " endpoint or with a key this gateway does not have")
            raise Untrusted(BAD_SIGNATURE, [Problem(
                signing.ANNOTATION, f"{where}: the signature does not verify ({why})")])
        seen_uid, seen_generation = self._latest.get(config.key, ("", 0))
        if seen_uid == uid and config.generation < seen_generation:
            raise Untrusted(REPLAYED, [Problem("generation", (
                f"{where} holds generation {config.generation}, older than generation"
                f" {seen_generation} already served: a replayed payload"))])
        problems = policy_problems(config, self.policy)
        if problems:
            raise Untrusted(POLICY, problems)
        self._latest[config.key] = (uid, max(config.generation, seen_generation)
                                    if seen_uid == uid else config.generation)


class SigningKeySource:
    """Reads the signing-key Secret into a `Trust`; a `Source` (`config/sources.py`)."""

    sync_in_background = True

    def __init__(self, client: Client, trust: Trust, namespace: str, name: str,
                 on_change: Callable[[], Awaitable[None]], interval: float = 10.0) -> None:
        self._client = client
        self._trust = trust
        self._namespace, self._name = namespace, name
        self._on_change = on_change
        self._interval = interval
        self._fingerprint = ""

    async def sync(self) -> None:
        """Read the keys once (a failure is logged; every ConfigMap is refused until read)."""
        await self._client.__aenter__()
        await self.refresh()

    async def watch(self) -> None:
        """Read the keys again every `interval` seconds until cancelled."""
        try:
            while True:
                await asyncio.sleep(self._interval)
                if await self.refresh():
                    await self._on_change()
        finally:
            await self._client.close()

    async def refresh(self) -> bool:
        """Read the Secret; True when the accepted keys changed."""
        where = f"signing-key Secret {self._namespace}/{self._name}"
        path = paths.object_path("v1", "secrets", self._name, namespace=self._namespace)
        try:
            secret = await self._client.request("GET", path)
            keys = signing.keys_from_secret(secret.get("data"))
        except (ApiError, signing.BadSigningKey) as exc:
            log.error("%s unusable, keeping the keys read before (if any): %s", where, exc)
            return False
        if keys.fingerprint() == self._fingerprint:
            return False
        self._fingerprint = keys.fingerprint()
        self._trust.keys = keys
        log.info("%s read (key set %s)", where, self._fingerprint)
        return True
