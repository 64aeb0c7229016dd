"""The app's shared state, under typed `AppKey`s, and the per-request trace key.

Everything a handler needs lives on the app (no module globals): the config store, the
router, metrics, settings and the load-shedding counters.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from switchyard_gateway import redaction
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.identity import Caller, Guard
from switchyard_gateway.metrics import AccessLogWriter, GatewayMetrics
from switchyard_gateway.routing.router import RequestTrace, Router
from switchyard_gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from switchyard_gateway.genai_metrics import GenAIMeters


@dataclasses.dataclass(slots=True)
class GatewayState:
    """Shared by every request of one app. Mutated only on the event loop."""

    settings: GatewaySettings
    store: ConfigStore
    metrics: GatewayMetrics
    router: Router | None = None  # set in cleanup_ctx, once the session exists
    draining: bool = False
    in_flight: int = 0
    in_flight_by_endpoint: Counter[str] = dataclasses.field(default_factory=Counter)
    #: The batched stderr sink of `--access-log stderr` (None: the logger, or off).
    access_writer: AccessLogWriter | None = None
    #: The current key scrubber, for anything logged about a request (`Credentials.redactor`).
    redactor: Callable[[], redaction.Redactor] = redaction.no_keys
    #: `--auth kubernetes`: who may call which endpoint (None: every caller may use all).
    guard: Guard | None = None
    #: OTLP metrics export on (`genai_metrics.from_env`): the GenAI histograms; None: off.
    meters: GenAIMeters | None = None


STATE = web.AppKey("switchyard_state", GatewayState)
TRACE = web.RequestKey("switchyard_trace", RequestTrace)
#: The authenticated caller of a request (set by `kube_auth.py` when `guard` is set).
CALLER = web.RequestKey("switchyard_caller", Caller)
