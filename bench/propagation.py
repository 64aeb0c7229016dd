"""Propagation: `kubectl apply` of a weight change to the gateway serving it, on a real
control plane (kube-apiserver + etcd + kube-controller-manager from
`switchyard_testing.controlplane`), with the operator and a gateway as local processes on
ServiceAccount tokens (`switchyard_testing.stack`).

For each change the endpoint's weights are flipped, the manifest applied, and the
gateway's `/metrics` polled until `switchyard_endpoint_config_info` carries the new spec
hash (computed offline with `switchyard_schema.normalize`). The gateway's own
`switchyard_config_propagation_seconds` histogram (render to applied) is read at the end.
Many endpoints applied at once are `bulk.py`'s (with `Ready` meaning served).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from switchyard_schema import normalize, parse_endpoint
from switchyard_testing import stack
from switchyard_testing.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[1]


def manifest(name: str, namespace: str, weight: int) -> dict[str, object]:
    """An endpoint with two targets at `weight`/100 - `weight` (no key: nothing is called)."""
    base = "http://127.0.0.1:9/v1"
    return {"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"task": "chat", "trafficSplit": [
                {"name": "a", "provider": "openai-compatible", "model": "a", "baseUrl": base,
                 "weight": weight},
                {"name": "b", "provider": "openai-compatible", "model": "b", "baseUrl": base,
                 "weight": 100 - weight}]}}


def spec_hash(doc: dict[str, object]) -> str:
    """The spec hash the operator will render for `doc`."""
    return str(normalize(parse_endpoint(doc)).spec_hash)


def _served(gateway: stack.Service, key: str, spec_hash: str) -> bool:
    status, body = gateway.admin_get("/metrics")
    return status == 200 and stack.metric_value(
        body.decode(), "switchyard_endpoint_config_info", endpoint=key, spec_hash=spec_hash) == 1


def _wait(predicate: object, bound: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.005)
    raise TimeoutError(f"not served within {bound}s")


def section(folder: Path, quick: bool = False) -> list[str]:
    """The propagation section (markdown lines)."""
    print("[bench] propagation", file=sys.stderr)
    changes = 20 if quick else 100
    with ControlPlane.start(crds=ROOT / "crds") as cluster:
        home = cluster.create_namespace("bench-sy")
        ns = cluster.create_namespace("bench-prop")
        operator = stack.operator(stack.bind_service_account(cluster, stack.OPERATOR_RBAC, home),
                                  [ns], folder, extra=["--allowed-base-url-hosts", "127.0.0.1"])
        gateway = stack.gateway(stack.bind_service_account(cluster, stack.GATEWAY_RBAC, home),
                                folder, namespaces=[ns], default_namespace=ns,
                                extra=["--log-level", "WARNING"])
        operator.start()
        gateway.start()
        try:
            gateway.wait_for("/readyz", 120)
            delays = _weight_changes(cluster, gateway, ns, changes)
            _, body = gateway.admin_get("/metrics")
            text = body.decode()
        finally:
            gateway.stop()
            operator.stop()
    count = stack.metric_value(text, "switchyard_config_propagation_seconds_count")
    total = stack.metric_value(text, "switchyard_config_propagation_seconds_sum")
    under = stack.metric_value(text, "switchyard_config_propagation_seconds_bucket", le="1.0")
    q = statistics.quantiles(delays, n=100, method="inclusive")
    return ["## Propagation", "",
            "Real kube-apiserver + etcd + kube-controller-manager on this machine, operator "
            "and gateway as local processes on ServiceAccount tokens.", "",
            f"- `kubectl apply` of a weight change to the gateway serving it (its "
            f"`switchyard_endpoint_config_info` shows the new spec hash), {changes} changes: "
            f"p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, max "
            f"{max(delays) * 1000:.0f} ms (kubectl's own start-up included).",
            f"- The gateway's `switchyard_config_propagation_seconds` (operator render to "
            f"applied): {count:.0f} observations, mean {total / max(count, 1) * 1000:.0f} ms, "
            f"{under / max(count, 1):.0%} under 1 s.", "",
            f"Target (issue 8), propagation p99 under 1 s from `kubectl apply` to served: "
            f"{q[98] * 1000:.0f} ms: **{'met' if q[98] < 1.0 else 'missed'}**.", ""]


def _weight_changes(cluster: ControlPlane, gateway: stack.Service, ns: str,
                    changes: int) -> list[float]:
    delays = []
    for i in range(changes + 1):
        doc = manifest("prop", ns, 10 + (i % 2) * 80 + (i % 7))
        started = time.monotonic()
        cluster.apply([doc])
        expected = spec_hash(doc)
        _wait(lambda h=expected: _served(gateway, f"{ns}/prop", h), 60)
        if i:  # the first one also creates the endpoint
            delays.append(time.monotonic() - started)
    return delays
