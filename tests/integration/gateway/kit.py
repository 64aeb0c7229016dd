"""Start the real gateway app on 127.0.0.1 (port 0) over manifests in a temp folder.

The gateway runs in the test's event loop with the same runner as `serve.py`
(`GatewayRunner`, handler cancellation on); clients are the real `openai` SDK, MLflow's
deployments client or aiohttp. Keys come from a private environment mapping, never the
process environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import yaml
from aiohttp import web

from switchyard_gateway.config.sources import FileSource
from switchyard_gateway.config.store import ConfigStore
from switchyard_gateway.credentials import Credentials
from switchyard_gateway.genai_metrics import GenAIMeters
from switchyard_gateway.http.app import ADMIN, create_app
from switchyard_gateway.http.server import GatewayRunner
from switchyard_gateway.http.state import STATE, GatewayState
from switchyard_gateway.identity import Guard
from switchyard_gateway.providers import registry
from switchyard_gateway.settings import GatewaySettings
from switchyard_gateway.telemetry import Telemetry


def endpoint(name: str = "chat", split: list[dict[str, Any]] | None = None,
             fallbacks: list[dict[str, Any]] | None = None,
             policy: dict[str, Any] | None = None, namespace: str | None = None,
             task: str = "chat") -> dict[str, Any]:
    """A GatewayEndpoint manifest."""
    spec: dict[str, Any] = {"task": task, "trafficSplit": split or []}
    if fallbacks:
        spec["fallbacks"] = fallbacks
    if policy:
        spec["policy"] = policy
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
            "metadata": meta, "spec": spec}


def openai_target(name: str, base_url: str, env: str | None, model: str | None = None,
                  weight: int | None = None, provider: str = "openai") -> dict[str, Any]:
    """A target pointing at a fake (`env`: the env var holding its key)."""
    out: dict[str, Any] = {"name": name, "provider": provider, "model": model or name,
                           "baseUrl": base_url}
    if env:
        out["apiKey"] = {"envVar": env}
    if weight is not None:
        out["weight"] = weight
    return out


@dataclasses.dataclass
class Gateway:
    """A running gateway."""

    url: str
    #: The admin port's URL (probes, /metrics, /ui).
    admin_url: str
    app: web.Application
    store: ConfigStore
    source: FileSource
    folder: pathlib.Path

    @property
    def state(self) -> GatewayState:
        """The app's shared state."""
        return self.app[STATE]

    def write(self, *docs: Any, file: str = "endpoints.yaml") -> None:
        """Replace a manifest file."""
        (self.folder / file).write_text(yaml.safe_dump_all(list(docs)))

    async def reload(self) -> bool:
        """Apply file changes now (instead of waiting for the poll)."""
        return await self.source.poll()


def _write(folder: pathlib.Path, docs: list[Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "endpoints.yaml").write_text(yaml.safe_dump_all(docs))


@contextlib.asynccontextmanager
async def running_gateway(folder: pathlib.Path, docs: list[Any], env: Mapping[str, str],
                          cooldown_clock: Callable[[], float] | None = None,
                          guard: Guard | None = None,
                          telemetry: Telemetry | None = None,
                          meters: GenAIMeters | None = None,
                          **settings: Any) -> AsyncIterator[Gateway]:
    """Write `docs`, start the gateway on a free loopback port, stop it afterwards."""
    _write(folder, docs)
    config = GatewaySettings(host="127.0.0.1", port=0, config_path=str(folder), seed=1234,
                             poll_interval=3600.0, **settings)
    store = ConfigStore(config.default_namespace)
    creds = Credentials(env, config.policy.env_names())
    source = FileSource(folder, store, creds, config.poll_interval, config.policy)
    app = create_app(config, store, creds, registry.adapter_for, [source],
                     cooldown_clock=cooldown_clock, guard=guard, telemetry=telemetry,
                     meters=meters)
    runner = GatewayRunner(app, handler_cancellation=True, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    admin = web.AppRunner(app[ADMIN], handle_signals=False)
    await admin.setup()
    await web.TCPSite(admin, "127.0.0.1", 0).start()
    admin_port = admin.addresses[0][1]
    try:
        yield Gateway(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", app,
                      store, source, folder)
    finally:
        await runner.cleanup()
        await admin.cleanup()


async def wait_for(predicate: Callable[[], bool], bound: float = 10.0) -> None:
    """Poll `predicate` until true; fail after `bound` seconds (a hang guard, not a timing)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + bound
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
