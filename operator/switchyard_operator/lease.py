"""Leader election with a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does.

Called by `switchyard operator` before Kopf starts: replicas wait in `acquire()` until
they hold the Lease, then `keep()` renews it; a leader that cannot renew within the lease
duration stops (the pod restarts and waits as a standby), so two replicas never reconcile
at once. Expiry is judged by the local clock from when the record was last seen to
change (no cross-node clock comparison), as client-go does. In a pod, the holder makes
its Pod the Lease's owner (`owner`), so the garbage collector removes the Lease once no
operator pod is left (`helm uninstall` leaves nothing behind); the owner moves with the
leadership, and a Pod object is gone only after its process ended, so a Lease is never
collected from under a live leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any

from switchyard_kube import client as kubeclient
from switchyard_kube import paths
from switchyard_operator import render

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Elector:
    """One candidate for one Lease."""

    client: kubeclient.Client
    namespace: str
    name: str
    identity: str
    duration: int = 15
    #: An ownerReference to this candidate's Pod (None outside a pod).
    owner: dict[str, Any] | None = None
    _seen: Any = None
    _seen_at: float = 0.0

    def _path(self, name: str = "") -> paths.ResourcePath:
        if not name:
            return paths.collection_path("coordination.k8s.io/v1", "leases",
                                         namespace=self.namespace)
        return paths.object_path("coordination.k8s.io/v1", "leases", name,
                                 namespace=self.namespace)

    async def _try(self) -> bool:
        """One attempt to take or renew the Lease; True when we hold it."""
        now = render.rfc3339_now()
        try:
            lease = await self.client.request("GET", self._path(self.name))
        except kubeclient.NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             **self._owned()},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": self.duration,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
            await self.client.request("POST", self._path(), body=body)
            return True
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"))
        if record != self._seen:
            self._seen, self._seen_at = record, time.monotonic()
        holder = spec.get("holderIdentity")
        expired = time.monotonic() - self._seen_at > int(
            spec.get("leaseDurationSeconds") or self.duration
        )
        if holder and holder != self.identity and not expired:
            return False
        if holder != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.identity, renewTime=now, leaseDurationSeconds=self.duration)
        lease["spec"] = spec
        lease["metadata"].update(self._owned())
        await self.client.request("PUT", self._path(self.name), body=lease)
        return True

    def _owned(self) -> dict[str, Any]:
        return {"ownerReferences": [self.owner]} if self.owner is not None else {}

    async def _attempt(self) -> bool:
        try:
            return await self._try()
        except kubeclient.ApiError as exc:  # 409 = someone else moved first
            logger.info("lease %s/%s: %s", self.namespace, self.name, exc)
            return False

    async def acquire(self) -> None:
        """Wait until this candidate holds the Lease."""
        logger.info(
            "waiting to lead via Lease %s/%s as %s", self.namespace, self.name, self.identity
        )
        never = asyncio.Event()  # waited on with a timeout: a sleep between attempts
        while not await self._attempt():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(never.wait(), self.duration / 5)
        logger.info("leading via Lease %s/%s", self.namespace, self.name)

    async def keep(self, lost: asyncio.Event) -> None:
        """Renew until cancelled; set `lost` when renewal fails for 2/3 of the duration.

        Stepping down before the Lease expires for the others keeps two leaders apart.
        """
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(self.duration / 3)
            if await self._attempt():
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > self.duration * 2 / 3:
                logger.error("lost the Lease %s/%s; stopping", self.namespace, self.name)
                lost.set()
                return

    async def release(self) -> None:
        """Give the Lease up on a clean exit, so a standby takes over at once."""
        try:
            lease = await self.client.request("GET", self._path(self.name))
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"].update(holderIdentity=None, leaseDurationSeconds=1)
            await self.client.request("PUT", self._path(self.name), body=lease)
        except kubeclient.ApiError as exc:
            logger.warning("could not release the Lease: %s", exc)
