"""Keep `Ready`, `Degraded` and the served fields honest as the gateway reports change.

Started by `switchyard operator --gateway-reports-namespace NS` (`switchyard_cli`) next to
Kopf: `keep_served` runs `refresh_served` twice a second. Each pass writes

- the first status of a new endpoint that `reconcile.py` held back (`Runtime.pending`),
  once a live replica serves it or after `reconcile.FIRST_STATUS_GRACE` seconds, and
- the status of each rendered endpoint whose served state changed (a report arrived, a
  replica's heartbeat expired), re-assessing every endpoint only when the reports or the
  set of live replicas changed since the last pass (at 10,000 endpoints a pass costs tens
  of milliseconds; most passes change nothing).

Writes go `SERVED_WRITERS` at a time, each under the endpoint's lock. Must not: touch the
status of an endpoint whose Ready is a render problem (that status is the reconciler's),
or write when nothing changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Sequence

import kopf

from switchyard_kube import client as kubeclient
from switchyard_operator import apply, served, status
from switchyard_operator.reconcile import FirstStatus, Runtime, fingerprint
from switchyard_schema import report as shape

log = logging.getLogger(__name__)

#: Status writes a pass keeps in flight at once: a bulk apply turns a thousand endpoints
#: served in one report, and one at a time their round trips would hold Ready back.
SERVED_WRITERS = 8
#: Ready reasons the served assessment may replace: a render problem stays as it is.
_SERVED_REASONS = frozenset({"Rendered", served.SERVED, served.NOT_SERVED, served.NO_REPLICA})

Key = tuple[str, str]


async def refresh_served(rt: Runtime, now: float | None = None) -> int:
    """One pass (see the module docstring). Returns the number of status writes."""
    if rt.reports is None:
        return 0
    reports, now = rt.reports.all(), time.time() if now is None else now
    live = frozenset(r.replica for r in reports if r.live(now))
    jobs: list[Awaitable[bool]] = []
    for key, first in list(rt.pending.items()):
        jobs.append(_first_status(rt, key, first, reports, now))
    seen = (rt.reports.version, live)
    if seen != rt.reports_seen:
        rt.reports_seen = seen
        for key, (spec_hash, names) in list(rt.rendered.items()):
            if key in rt.pending:
                continue
            assessment = served.assess(reports, _text(key), spec_hash, names, now)
            if rt.assessed.get(key) != fingerprint(assessment):
                jobs.append(_changed(rt, key, spec_hash, names, assessment))
    try:
        return await _bounded(jobs)
    except BaseException:
        rt.reports_seen = None  # a failed write is tried again at the next pass
        raise


async def _bounded(jobs: Sequence[Awaitable[bool]]) -> int:
    gate = asyncio.Semaphore(SERVED_WRITERS)

    async def one(job: Awaitable[bool]) -> bool:
        async with gate:
            return await job

    results = await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return sum(1 for r in results if r is True)


def _text(key: Key) -> str:
    return f"{key[0]}/{key[1]}"


async def _first_status(rt: Runtime, key: Key, first: FirstStatus,
                        reports: list[shape.Report], now: float) -> bool:
    rendered = rt.rendered.get(key)
    if rendered is None:
        return False
    assessment = served.assess(reports, _text(key), *rendered, now)
    if assessment.ready.status != status.TRUE and time.monotonic() < first.deadline:
        return False
    async with rt.locks[key]:
        if rt.pending.get(key) is not first:
            return False  # reconciled meanwhile, which wrote or held back its own
        summary = dataclasses.replace(first.summary, serving_replicas=assessment.serving,
                                      target_health=assessment.targets)
        new = status.build({}, [assessment.ready, *first.conditions, assessment.degraded],
                           summary, first.generation, status.now_rfc3339())
        await apply.patch_status(rt.client, key[0], key[1], new)
        del rt.pending[key]
        rt.assessed[key] = fingerprint(assessment)
        return True


async def _changed(rt: Runtime, key: Key, spec_hash: str, names: tuple[str, ...],
                   assessment: served.Served) -> bool:
    async with rt.locks[key]:
        if rt.rendered.get(key) != (spec_hash, names) or key in rt.pending:
            return False  # reconciled meanwhile: it assessed with the new spec
        wrote = await _write_served(rt, key, spec_hash, assessment)
        rt.assessed[key] = fingerprint(assessment)
        return wrote


async def _write_served(rt: Runtime, key: Key, spec_hash: str,
                        assessment: served.Served) -> bool:
    body = await apply.get_endpoint(rt.client, *key)
    if body is None:
        rt.rendered.pop(key, None)
        rt.assessed.pop(key, None)
        return False
    previous = body.get("status") or {}
    old = previous.get("conditions") or []
    ready = status.find(old, status.READY)
    if previous.get("specHash") != spec_hash or (
            ready is not None and ready.get("reason") not in _SERVED_REASONS):
        return False  # another spec or a render problem: reconcile owns that status
    kept = [status.Condition(str(c.get("type")), str(c.get("status")), str(c.get("reason")),
                             str(c.get("message")))
            for c in old if c.get("type") in (status.ACCEPTED, status.RESOLVED_REFS)]
    new = status.build(previous, [assessment.ready, *kept, assessment.degraded],
                       status.Summary(None, None, None, None, assessment.serving,
                                      assessment.targets),
                       int(previous.get("observedGeneration") or 1), status.now_rfc3339())
    if not status.changed(previous, new):
        return False
    await apply.patch_status(rt.client, key[0], key[1], new)
    return True


async def keep_served(rt: Runtime, period: float = 0.5) -> None:
    """Run `refresh_served` every `period` seconds until cancelled (errors are logged)."""
    while True:
        try:
            await refresh_served(rt)
        except (kopf.TemporaryError, kubeclient.ApiError) as exc:
            log.warning("refreshing served status: %s", exc)
        await asyncio.sleep(period)
