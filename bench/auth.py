"""Caller identity's cost: `switchyard gateway --auth kubernetes` against no inbound auth.

On a real control plane (`switchyard_testing.controlplane`), the gateway runs standalone
(`--config`, the compare section's endpoints) with `--kubeconfig` of a ServiceAccount bound
to docs/gateway-auth-rbac.yaml; callers are ServiceAccounts of `default` bound by
docs/caller-rbac-example.yaml. In the same run and alternating, each mode is started fresh,
pinned to the gateway core, warmed up and measured with wrk (closed loop, one caller token,
so every request after the first is the cached path): CPU per request from /proc. The cold
path is timed separately: one request each for fresh ServiceAccounts (a TokenReview and a
SubjectAccessReview each, the API server on this same machine), against a second request
of the same callers (cached). Bounded: a fixed number of rounds, callers and seconds.
"""

from __future__ import annotations

import statistics
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from bench import procs, systems, wrk
from bench.upstream import Upstream
from switchyard_testing import stack
from switchyard_testing.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[1]
AUTH_RBAC = ROOT / "docs" / "gateway-auth-rbac.yaml"
CALLER_RBAC = ROOT / "docs" / "caller-rbac-example.yaml"


def _callers(cluster: ControlPlane, names: list[str]) -> dict[str, str]:
    """Bind `default`'s ServiceAccounts (the example's RoleBinding) and return a token each."""
    role, binding = [d for d in yaml.safe_load_all(CALLER_RBAC.read_text()) if d]
    binding["metadata"]["namespace"] = "default"
    binding["subjects"][0]["name"] = "system:serviceaccounts:default"
    accounts = [{"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": n, "namespace": "default"}} for n in names]
    cluster.apply([role, binding, *accounts])
    return {n: cluster.kubectl("create", "token", n, "-n", "default", "--audience",
                               "switchyard", "--duration", "1h").stdout.strip() for n in names}


def _start(upstream: Upstream, folder: Path, kubeconfig: Path | None,
           token: str) -> tuple[procs.Child, str]:
    config = folder / "auth-bench.yaml"
    config.write_text(yaml.safe_dump_all(systems.switchyard_manifests(upstream)))
    port = procs.free_port()
    argv = [sys.executable, "-m", "switchyard_cli.main", "gateway", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port), "--admin-port", "0"]
    name = "switchyard-noauth"
    if kubeconfig is not None:
        argv += ["--auth", "kubernetes", "--kubeconfig", str(kubeconfig)]
        name = "switchyard-kubeauth"
    child = procs.Child(name, procs.pinned(procs.GATEWAY_CORE, argv), folder,
                        env={"BENCH_KEY": systems.KEY})
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    procs.wait_http(url, child, method="POST", body=systems.chat_body("bench"),
                    headers=_headers(token), timeout=120)
    return child, url


def _headers(token: str) -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {token}"}


def _cpu_per_request(child: procs.Child, url: str, token: str, seconds: float) -> float:
    body = systems.chat_body("bench")
    wrk.run(url, body, _headers(token), seconds=2, connections=32)  # warm-up
    cpu0 = child.cpu_seconds()
    result = wrk.run(url, body, _headers(token), seconds=seconds, connections=32)
    if result.errors:
        raise RuntimeError(f"{child.name}: {result.errors} errors under load")
    return (child.cpu_seconds() - cpu0) / max(1, result.requests) * 1e6


def _once(url: str, token: str) -> float:
    request = urllib.request.Request(url, data=systems.chat_body("bench"), method="POST",
                                     headers=_headers(token))
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as reply:
        reply.read()
        if reply.status != 200:
            raise RuntimeError(f"status {reply.status}")
    return time.perf_counter() - started


def section(upstream: Upstream, folder: Path, quick: bool = False) -> list[str]:
    """The caller-identity section (markdown lines)."""
    print("[bench] caller identity (--auth kubernetes)", file=sys.stderr)
    rounds, seconds, fresh = (1, 4.0, 10) if quick else (3, 10.0, 40)
    cpu: dict[str, list[float]] = {"none": [], "kubernetes": []}
    with ControlPlane.start() as cluster:
        home = cluster.create_namespace("bench-sy")
        kubeconfig = stack.bind_service_account(cluster, AUTH_RBAC, home)
        tokens = _callers(cluster, ["bench-load", *(f"cold-{i}" for i in range(fresh))])
        load = tokens.pop("bench-load")
        for _ in range(rounds):
            for mode, config in (("none", None), ("kubernetes", kubeconfig)):
                child, url = _start(upstream, folder, config, load)
                try:
                    cpu[mode].append(_cpu_per_request(child, url, load, seconds))
                finally:
                    child.stop()
        child, url = _start(upstream, folder, kubeconfig, load)
        try:
            cold = [_once(url, t) for t in tokens.values()]
            warm = [_once(url, t) for t in tokens.values()]
        finally:
            child.stop()
    none, kube = statistics.median(cpu["none"]), statistics.median(cpu["kubernetes"])
    delta = (kube - none) / none
    return ["## Caller identity (`--auth kubernetes`)", "",
            "One gateway process on the gateway core, standalone with `--kubeconfig`; the "
            "real kube-apiserver of `switchyard_testing.controlplane` on this machine. "
            f"Median of {rounds} alternating rounds, wrk {seconds:g} s, 32 connections, one "
            "ServiceAccount token (the cached path).", "",
            "| mode | gateway CPU per request |", "|---|---|",
            f"| no inbound auth | {none:.0f} us |",
            f"| `--auth kubernetes`, cached | {kube:.0f} us ({delta:+.1%}) |", "",
            f"Cold path ({fresh} fresh ServiceAccounts, one request each: TokenReview + "
            f"SubjectAccessReview, sequential): p50 {_ms(cold, 50)} ms, max "
            f"{max(cold) * 1000:.1f} ms; the same callers again (cached): p50 "
            f"{_ms(warm, 50)} ms.", "",
            f"Target (issue 17), cached-path CPU within 5% of no auth: {delta:+.1%}: "
            f"**{'met' if delta <= 0.05 else 'missed'}**.", ""]


def _ms(values: list[float], pct: int) -> str:
    return f"{statistics.quantiles(values, n=100, method='inclusive')[pct - 1] * 1000:.1f}"
