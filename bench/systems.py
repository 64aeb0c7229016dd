"""The systems compared, each given the same 50/50 endpoint with one fallback.

Every system answers `POST <url>` with the OpenAI chat body naming model `bench` (JSON
upstream ports A/B, fallback C) or `bench-stream` (SSE ports A/B). Each `start_*` writes
the system's own config, launches it pinned to the gateway core with one worker and
returns a `Running` once it answers. The peers run from their own venvs (`bench.tools`).

What each config holds, and where a peer cannot express the same thing, is in `NOTES`,
which the report prints.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from bench import procs, tools
from bench.upstream import Upstream

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-0000"
HEADERS = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}


def chat_body(model: str, stream: bool = False) -> bytes:
    """The request every system gets."""
    text = ('{"model":"%s","messages":[{"role":"user","content":"Say hello."}],'
            '"max_tokens":16%s}')
    return (text % (model, ',"stream":true' if stream else "")).encode()


@dataclasses.dataclass
class Running:
    """A started system: where to send requests, and its process (None: direct)."""

    name: str
    url: str
    child: procs.Child | None

    def stop(self) -> None:
        """Stop the system's process, if any."""
        if self.child is not None:
            self.child.stop()


Starter = Callable[[Upstream, Path], Running]


def _ready(name: str, child: procs.Child, port: int) -> Running:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    procs.wait_http(url, child, method="POST", body=chat_body("bench"), headers=HEADERS,
                    timeout=180)
    return Running(name, url, child)


def start_direct(upstream: Upstream, folder: Path) -> Running:
    """The floor: the load generator talks to nginx port A itself."""
    return Running("direct", f"http://127.0.0.1:{upstream.json[0]}/v1/chat/completions", None)


def start_naive(upstream: Upstream, folder: Path) -> Running:
    """The Python floor: bench/naive_proxy.py on the gateway core."""
    port = procs.free_port()
    argv = [sys.executable, str(ROOT / "bench" / "naive_proxy.py"), "--port", str(port)]
    for p in upstream.json[:2]:
        argv += ["--upstream", upstream.base_url(p)]
    for p in upstream.sse:
        argv += ["--sse", upstream.base_url(p)]
    child = procs.Child("naive", procs.pinned(procs.GATEWAY_CORE, argv), folder)
    return _ready("naive", child, port)


def switchyard_manifests(upstream: Upstream) -> list[dict[str, object]]:
    """GatewayEndpoints `bench` and `bench-stream`: 50/50 split, one fallback."""
    def target(name: str, port: int, weight: int | None = None) -> dict[str, object]:
        out: dict[str, object] = {"name": name, "provider": "openai", "model": f"gpt-{name}",
                                  "baseUrl": upstream.base_url(port),
                                  "apiKey": {"envVar": "BENCH_KEY"}}
        if weight is not None:
            out["weight"] = weight
        return out

    def endpoint(name: str, a: int, b: int) -> dict[str, object]:
        return {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"task": "chat",
                         "trafficSplit": [target("a", a, 50), target("b", b, 50)],
                         "fallbacks": [target("fallback", upstream.json[2])]}}
    return [endpoint("bench", *upstream.json[:2]), endpoint("bench-stream", *upstream.sse)]


def start_switchyard(upstream: Upstream, folder: Path, workers: int = 1,
                     traced: bool = False) -> Running:
    """`switchyard gateway --config` (standalone), default flags, on the gateway core;
    `traced`: with OpenTelemetry tracing on, every request sampled, batches exported over
    OTLP/HTTP to the fallback nginx port (which answers 200 to anything)."""
    config = folder / "switchyard.yaml"
    config.write_text(yaml.safe_dump_all(switchyard_manifests(upstream)))
    port = procs.free_port()
    argv = [sys.executable, "-m", "switchyard_cli.main", "gateway", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    name = "switchyard" if workers == 1 else f"switchyard-{workers}w"
    env = {"BENCH_KEY": KEY}
    if traced:
        name += "-traced"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{upstream.json[2]}"
    core = procs.GATEWAY_CORE if workers == 1 else "0,1"
    child = procs.Child(name, procs.pinned(core, argv), folder, env=env)
    return _ready(name, child, port)


LITELLM_SETTINGS = {
    "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                        "fallbacks": [{"bench": ["bench-fallback"]},
                                      {"bench-stream": ["bench-fallback"]}]},
    "litellm_settings": {"telemetry": False, "set_verbose": False},
    "general_settings": {"disable_spend_logs": True, "disable_error_logs": True},
}
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
               "DISABLE_SCHEMA_UPDATE": "True"}


def start_litellm(upstream: Upstream, folder: Path) -> Running:
    """LiteLLM proxy: two deployments of `bench` (simple-shuffle = 50/50) + a fallback group."""
    def deployment(group: str, name: str, port: int) -> dict[str, object]:
        return {"model_name": group, "litellm_params": {
            "model": f"openai/gpt-{name}", "api_base": upstream.base_url(port), "api_key": KEY}}
    config = {"model_list": [
        deployment("bench", "a", upstream.json[0]), deployment("bench", "b", upstream.json[1]),
        deployment("bench-stream", "a", upstream.sse[0]),
        deployment("bench-stream", "b", upstream.sse[1]),
        deployment("bench-fallback", "fallback", upstream.json[2]),
    ], **LITELLM_SETTINGS}
    path = folder / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    port = procs.free_port()
    argv = [str(tools.peer_bin("litellm", "litellm")), "--config", str(path), "--host",
            "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    env = {k: v for k, v in LITELLM_ENV.items()}
    child = procs.Child("litellm", procs.pinned(procs.GATEWAY_CORE, argv), folder, env=env)
    return _ready("litellm", child, port)


def start_mlflow(upstream: Upstream, folder: Path) -> Running:
    """MLflow AI gateway: traffic route `bench` over two endpoints 50/50 (no fallback)."""
    def endpoint(name: str, port: int) -> dict[str, object]:
        return {"name": name, "endpoint_type": "llm/v1/chat", "model": {
            "provider": "openai", "name": f"gpt-{name}",
            "config": {"openai_api_key": KEY, "openai_api_base": upstream.base_url(port)}}}

    def route(name: str, a: str, b: str) -> dict[str, object]:
        return {"name": name, "task_type": "llm/v1/chat", "routing_strategy": "TRAFFIC_SPLIT",
                "destinations": [{"name": a, "traffic_percentage": 50},
                                 {"name": b, "traffic_percentage": 50}]}
    config = {"endpoints": [endpoint("a", upstream.json[0]), endpoint("b", upstream.json[1]),
                            endpoint("sa", upstream.sse[0]), endpoint("sb", upstream.sse[1])],
              "routes": [route("bench", "a", "b"), route("bench-stream", "sa", "sb")]}
    path = folder / "mlflow.yaml"
    path.write_text(yaml.safe_dump(config))
    port = procs.free_port()
    argv = [str(tools.peer_bin("mlflow", "mlflow")), "gateway", "start", "--config-path",
            str(path), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    child = procs.Child("mlflow", procs.pinned(procs.GATEWAY_CORE, argv), folder)
    return _ready("mlflow", child, port)


def start_switchyard_2w(upstream: Upstream, folder: Path) -> Running:
    """`switchyard gateway --workers 2` on both cores (CPU per request vs one worker)."""
    return start_switchyard(upstream, folder, workers=2)


def start_switchyard_traced(upstream: Upstream, folder: Path) -> Running:
    """One worker with tracing on (CPU per request vs tracing off)."""
    return start_switchyard(upstream, folder, traced=True)


SYSTEMS: dict[str, Starter] = {
    "direct": start_direct, "naive": start_naive, "switchyard": start_switchyard,
    "switchyard-traced": start_switchyard_traced,
    "switchyard-2w": start_switchyard_2w, "litellm": start_litellm, "mlflow": start_mlflow,
}

NOTES = {
    "direct": "wrk/the load generator straight to nginx port A (the floor).",
    "naive": "bench/naive_proxy.py: aiohttp + uvloop, one ClientSession, random 50/50, "
             "no parsing, no fallback, no logging.",
    "switchyard": "`switchyard gateway --config` with default flags (JSON access log on "
                  "at INFO, Prometheus metrics on); split 50/50 + one fallback.",
    "switchyard-traced": "the same with OpenTelemetry tracing on (OTEL_EXPORTER_OTLP_ENDPOINT "
                         "set: every request sampled, a server span and an attempt span "
                         "each, batch-exported over OTLP/HTTP to a loopback nginx).",
    "switchyard-2w": "the same with `--workers 2` (SO_REUSEPORT, Prometheus multiprocess "
                     "metrics), not pinned (both cores, shared with wrk and nginx): only its "
                     "CPU per request is comparable (the 1-to-2-worker target).",
    "litellm": "`litellm --num_workers 1`; two deployments of one model group with "
               "routing_strategy simple-shuffle (50/50) + fallbacks to a third group; "
               "num_retries 0, no database, disable_spend_logs, disable_error_logs, "
               "telemetry off, LITELLM_LOG=ERROR, local model cost map.",
    "mlflow": "`mlflow gateway start --workers 1` (gunicorn + one uvicorn worker); a "
              "TRAFFIC_SPLIT route over two endpoints 50/50. Its YAML config has no "
              "fallback (FallbackProvider is only used by the tracking-server gateway), "
              "so MLflow runs without one.",
}
