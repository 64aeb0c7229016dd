"""Control-plane scale (issue 18): many GatewayEndpoints applied at once, to served and
Ready, the API-server writes that costs, and memory at 10,000 endpoints.

A real control plane (`switchyard_testing.controlplane`: kube-apiserver + etcd +
kube-controller-manager on this machine), the operator with `--gateway-reports-namespace`
(so `Ready` means served) and one gateway replica writing its report, both as local
processes on ServiceAccount tokens (`switchyard_testing.stack`). The endpoints are applied
the way a platform team applies a folder of manifests: one
`kubectl apply --server-side -f -` (kubectl sends one request per object, one after
another). Then, every 0.25 s:

- served: the gateway's `/metrics` shows every endpoint's `switchyard_endpoint_config_info`
  with the spec hash (computed offline with `switchyard_schema.normalize`);
- Ready: a LIST of the endpoints (from the API server's watch cache) finds `Ready=True`
  on all of them.

API-server writes are the kube-apiserver's own `apiserver_request_total` for the write
verbs (POST, PUT, PATCH, APPLY, DELETE), scraped from its `/metrics` before and after:
everything every client wrote, kubectl's own requests included. The steady state is the
same count over `STEADY_SECONDS` with nothing changing. Memory: RSS of the operator and
the gateway process once `many_more` endpoints are all served and Ready (applied through
the same API server), and the size of the gateway's report ConfigMap then.
"""

from __future__ import annotations

import collections
import json
import os
import ssl
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import procs
from bench.propagation import manifest, spec_hash
from switchyard_schema import report as shape
from switchyard_testing import stack
from switchyard_testing.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[1]
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE"})
STEADY_SECONDS = 30.0
REPLICA = "gw-0"
#: The API server's limit on a ConfigMap's data (etcd's request limit is a little more).
CONFIGMAP_LIMIT = 1024 * 1024


@dataclass
class Bulk:
    """One bulk apply, timed from the start of `kubectl apply`."""

    count: int
    applied: float  # kubectl returned
    served: float  # the gateway serves every endpoint's spec
    ready: float  # every endpoint shows Ready=True
    writes: collections.Counter[tuple[str, str]]  # (verb, resource[/subresource]) -> count


class Watcher:
    """Reads the API server's metrics and the endpoints' status as the admin."""

    def __init__(self, cluster: ControlPlane) -> None:
        self.cluster = cluster
        self._tls = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))

    def _get(self, path: str) -> bytes:
        request = urllib.request.Request(
            self.cluster.server + path,
            headers={"Authorization": f"Bearer {self.cluster.admin_token}"})
        with urllib.request.urlopen(request, context=self._tls, timeout=30) as reply:
            return bytes(reply.read())

    def writes(self) -> collections.Counter[tuple[str, str]]:
        """apiserver_request_total of the write verbs, by (verb, resource[/subresource])."""
        out: collections.Counter[tuple[str, str]] = collections.Counter()
        for line in self._get("/metrics").decode().splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            head, _, value = line.rpartition(" ")
            labels = dict(part.split("=", 1) for part in
                          head[len("apiserver_request_total{"):-1].replace('"', "").split(","))
            if labels.get("verb") in WRITE_VERBS:
                resource = labels.get("resource", "") + (
                    f"/{labels['subresource']}" if labels.get("subresource") else "")
                out[(labels["verb"], resource)] += int(float(value))
        return out

    def ready(self, namespace: str) -> int:
        """Endpoints of `namespace` whose Ready condition is True (a cached LIST)."""
        listed = json.loads(self._get(
            f"/apis/switchyard.dev/v1alpha1/namespaces/{namespace}/gatewayendpoints"
            "?resourceVersion=0"))
        return sum(1 for item in listed["items"]
                   if any(c.get("type") == "Ready" and c.get("status") == "True"
                          for c in (item.get("status") or {}).get("conditions") or []))


def _served(gateway: stack.Service, expected: str) -> int:
    status, body = gateway.admin_get("/metrics")
    return body.decode().count(f'spec_hash="{expected}"}} 1.0') if status == 200 else 0


def bulk(cluster: ControlPlane, watcher: Watcher, gateway: stack.Service, namespace: str,
         first: int, count: int, bound: float = 900.0) -> Bulk:
    """Apply endpoints bulk-`first` .. bulk-`first + count - 1` at once; time them."""
    docs = [manifest(f"bulk-{i}", namespace, 50) for i in range(first, first + count)]
    expected = spec_hash(docs[0])  # the same spec everywhere, so the same hash
    total = first + count
    text = yaml.safe_dump_all(docs)
    before = watcher.writes()
    started = time.monotonic()
    cluster.kubectl("apply", "--server-side", "--field-manager=platform-team", "-f", "-",
                    input=text, timeout=bound)
    applied = time.monotonic() - started
    served = ready = 0.0
    while not (served and ready) and time.monotonic() - started < bound:
        if not served and _served(gateway, expected) >= total:
            served = time.monotonic() - started
        if not ready and watcher.ready(namespace) >= total:
            ready = time.monotonic() - started
        time.sleep(0.25)
    if not (served and ready):
        raise TimeoutError(f"{count} endpoints not all served and Ready within {bound} s")
    return Bulk(count, applied, served, ready, watcher.writes() - before)


def steady(watcher: Watcher, seconds: float = STEADY_SECONDS) -> collections.Counter[
        tuple[str, str]]:
    """The writes made over `seconds` with nothing changing."""
    before = watcher.writes()
    time.sleep(seconds)
    return watcher.writes() - before


def report_bytes(cluster: ControlPlane, namespace: str) -> int:
    """Size of the gateway replica's report (`report.json`) in its ConfigMap."""
    done = cluster.kubectl("get", "configmap", shape.report_name(REPLICA), "-n", namespace,
                           "-o", "json")
    return len(json.loads(done.stdout)["data"][shape.DATA_KEY].encode())


@dataclass
class Result:
    """What `run` measured."""

    bulk: Bulk
    steady: collections.Counter[tuple[str, str]]
    many: int
    many_bulk: Bulk | None
    operator_mib: float
    gateway_mib: float
    report_bytes: int
    load: tuple[float, float]  # load average (1 min) at the start and the end


def run(folder: Path, count: int = 1000, many: int = 10_000) -> Result:
    """Start everything, measure (see the module docstring), stop everything."""
    load_before = os.getloadavg()[0]
    with ControlPlane.start(crds=ROOT / "crds") as cluster:
        home = cluster.create_namespace("bench-sy")
        ns = cluster.create_namespace("bench-bulk")
        operator = stack.operator(
            stack.bind_service_account(cluster, stack.OPERATOR_RBAC, home), [ns], folder,
            extra=["--allowed-base-url-hosts", "127.0.0.1", "--gateway-reports-namespace", home])
        gateway = stack.gateway(
            stack.bind_service_account(cluster, stack.GATEWAY_RBAC, home), folder,
            namespaces=[ns], default_namespace=ns,
            extra=["--log-level", "WARNING", "--report-name", REPLICA,
                   "--report-namespace", home])
        operator.start()
        gateway.start()
        try:
            gateway.wait_for("/readyz", 120)
            operator.wait_for("/healthz", 120)
            watcher = Watcher(cluster)
            time.sleep(3)  # the first report written, start-up writes over
            first = bulk(cluster, watcher, gateway, ns, 0, count)
            time.sleep(5)  # the last status writes and reports settle
            quiet = steady(watcher)
            more = bulk(cluster, watcher, gateway, ns, count, many - count) \
                if many > count else None
            time.sleep(5)  # a heartbeat: the report holds every endpoint
            assert operator.process.pid is not None and gateway.process.pid is not None
            operator_mib = procs.rss_bytes(operator.process.pid) / 2**20
            gateway_mib = procs.rss_bytes(gateway.process.pid) / 2**20
            size = report_bytes(cluster, home)
        finally:
            gateway.stop()
            operator.stop()
    return Result(first, quiet, max(many, count), more, operator_mib, gateway_mib, size,
                  (load_before, os.getloadavg()[0]))


def _top(writes: collections.Counter[tuple[str, str]], count: int) -> str:
    return ", ".join(f"{resource} {verb} {n / count:.2f}"
                     for (verb, resource), n in writes.most_common() if n / count >= 0.01)


def section(folder: Path, quick: bool = False, count: int = 0, many: int = 0) -> list[str]:
    """The control-plane scale section (markdown lines); `count`/`many` override the
    defaults (1,000 then 10,000 in all; 200 then 1,000 with `quick`)."""
    print("[bench] control-plane scale", file=sys.stderr)
    count, many = count or (200 if quick else 1000), many or (1000 if quick else 10_000)
    r = run(folder, count, many)
    b = r.bulk
    total = sum(b.writes.values())
    quiet = sum(r.steady.values())
    quiet_parts = ", ".join(f"{res} {verb} {n}" for (verb, res), n in r.steady.most_common())
    ok = b.ready < 10 and b.served < 10
    lines = [
        "## Control-plane scale (issue 18)", "",
        "Real kube-apiserver + etcd + kube-controller-manager on this machine; the operator "
        "(with `--gateway-reports-namespace`: `Ready` means every live gateway replica serves "
        "the spec) and one gateway replica (reporting every 1 s, heartbeat 5 s) as local "
        "processes on ServiceAccount tokens. Endpoints applied with one "
        "`kubectl apply --server-side -f -` (kubectl sends them one after another). "
        "Writes: the kube-apiserver's `apiserver_request_total` for POST, PUT, PATCH, APPLY "
        "and DELETE, before and after (every client's, kubectl's included). Load average "
        f"(1 min) {r.load[0]:.1f} at the start, {r.load[1]:.1f} at the end, on "
        f"{os.cpu_count()} cores shared with other work.", "",
        f"- {b.count:,} GatewayEndpoints applied at once: kubectl done after "
        f"{b.applied:.1f} s, all served by the gateway after {b.served:.1f} s, all Ready "
        f"after {b.ready:.1f} s.",
        f"- API-server writes for them: {total:,} ({total / b.count:.2f} per endpoint, "
        f"{total / b.ready:.0f}/s over the {b.ready:.1f} s): {_top(b.writes, b.count)} "
        "per endpoint.",
        f"- Steady state afterwards, nothing changing: {quiet / STEADY_SECONDS:.2f} writes/s "
        f"over {STEADY_SECONDS:.0f} s ({quiet_parts or 'none'}).",
    ]
    if r.many_bulk is not None:
        m = r.many_bulk
        lines.append(
            f"- {m.count:,} more applied at once on top ({r.many:,} in all): all served after "
            f"{m.served:.1f} s, all Ready after {m.ready:.1f} s, "
            f"{sum(m.writes.values()) / m.count:.2f} writes per endpoint.")
    lines += [
        f"- With {r.many:,} endpoints served and Ready: operator RSS {r.operator_mib:.0f} MiB, "
        f"gateway RSS {r.gateway_mib:.0f} MiB; the gateway's report ConfigMap holds "
        f"{r.report_bytes / 1024:.0f} KiB ({r.report_bytes / CONFIGMAP_LIMIT:.0%} of the "
        "1 MiB a ConfigMap may hold).", "",
        f"Target (issue 18), {b.count:,} endpoints applied at once all served and Ready in "
        f"under 10 s: served {b.served:.1f} s, Ready {b.ready:.1f} s: "
        f"**{'met' if ok else 'missed'}**.", ""]
    return lines


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int, default=0, help="endpoints applied at once")
    parser.add_argument("--many", type=int, default=0,
                        help="endpoints in all for the memory figures (<= count: none more)")
    args = parser.parse_args()
    print("\n".join(section(Path(tempfile.mkdtemp(prefix="switchyard-bulk-")), args.quick,
                            args.count, args.many)))
