"""The Helm chart against a real API server: lint, render, install, upgrade, RBAC.

`helm template` output is applied with `kubectl apply --dry-run=server` for the default
values and a matrix of non-default ones, so the API server itself (schemas, admission)
judges every object. `helm install`/`helm upgrade` run for real (pods do not start without
a kubelet; the objects are checked instead). RBAC is proven with `kubectl auth can-i
--as=system:serviceaccount:...`, and the chart's rules are compared with
docs/operator-rbac.yaml and docs/gateway-rbac.yaml, the files the operator and gateway
e2e tests run their processes under (so those tests prove the rules are enough).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchyard_cli import gateway_cmd
from switchyard_gateway import telemetry
from switchyard_testing.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchyard"
CRDS = ROOT / "crds"
CRD = "gatewayendpoints.switchyard.dev"
HELM_TIMEOUT = 120.0


class Helm:
    """helm with the e2e cluster's admin kubeconfig and its own config/cache folders."""

    def __init__(self, cluster: Cluster, home: Path) -> None:
        self.cluster = cluster
        self.home = home
        version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
        self.kube_version = version["serverVersion"]["gitVersion"].lstrip("v")

    def run(self, *args: str, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),  # never the caller's ambient one
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        argv = [str(self.cluster.bin_dir / "helm"), *args,
                f"--kubeconfig={self.cluster.kubeconfig}"]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, input=input,
                              timeout=HELM_TIMEOUT)
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stderr}")
        return done

    def template(self, release: str, namespace: str, *values: str,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("template", release, str(CHART), "-n", namespace,
                        f"--kube-version={self.kube_version}", *values, check=check)

    def install(self, release: str, namespace: str, *values: str) -> None:
        self.run("install", release, str(CHART), "-n", namespace, *values)

    def upgrade(self, release: str, namespace: str, *values: str) -> None:
        self.run("upgrade", release, str(CHART), "-n", namespace, *values)


@pytest.fixture(scope="module")
def helm(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    if not (cluster.bin_dir / "helm").exists():
        pytest.skip(f"no helm in {cluster.bin_dir}: run hack/controlplane/build.sh")
    return Helm(cluster, tmp_path_factory.mktemp("helm"))


@pytest.fixture
def watched(cluster: Cluster) -> Iterator[list[str]]:
    """Two namespaces a restricted release watches, and they exist beforehand."""
    names = [cluster.create_namespace("e2e-chart-watched") for _ in range(2)]
    yield names
    for name in names:
        cluster.delete_namespace(name)


def _sets(**values: Any) -> list[str]:
    return [f"--set-json={key}={json.dumps(value)}" for key, value in values.items()]


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _by_kind(docs: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


# --- lint and render --------------------------------------------------------------------


MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {},
    "restricted": {"watchNamespaces": "WATCHED"},
    "hpa": {"gateway.autoscaling.enabled": True,
            "gateway.autoscaling.targetMemoryUtilizationPercentage": 80},
    "networkpolicy": {"gateway.networkPolicy.enabled": True, "watchNamespaces": "WATCHED"},
    "networkpolicy-clusterwide": {"gateway.networkPolicy.enabled": True},
    "auth-tokens": {"gateway.auth.enabled": True,
                    "gateway.auth.tokens": ["token-0123456789abcdef"]},
    "auth-existing-secret": {"gateway.auth.enabled": True,
                             "gateway.auth.existingSecret": "inbound-tokens"},
    "auth-kubernetes": {"gateway.auth.kubernetes.enabled": True,
                        "gateway.auth.kubernetes.audience": "gateway.example"},
    "standalone-operator": {"operator.leaderElection.enabled": False},
    "everything": {
        "watchNamespaces": "WATCHED",
        "gateway.autoscaling.enabled": True, "gateway.networkPolicy.enabled": True,
        "gateway.auth.enabled": True, "gateway.auth.tokens": ["token-0123456789abcdef"],
        "gateway.auth.kubernetes.enabled": True,
        "gateway.networkPolicy.adminFrom": [{"namespaceSelector": {}}],
        "operator.replicas": 2, "allowedEnvKeys": {"OPENAI_API_KEY": ["api.openai.com"]},
        "allowedBaseUrlHosts": ["*.models.svc", "vllm.models:8000"],
        "operator.allowedBaseUrlHosts": ["*.legacy.svc"], "gateway.maxInFlight": 256,
        "signing.existingSecret": "platform-signing-key",
        "image.digest": "sha256:" + "a" * 64,
        "gateway.upstream": {"maxHeaderBytes": 32768, "maxBodyBytes": 8388608,
                             "maxDecompressedBytes": 8388608, "maxSseLineBytes": 1048576,
                             "maxSseEventBytes": 2097152, "keepaliveSeconds": 3.5,
                             "maxConnectionsPerOrigin": 4000, "capacityWaitSeconds": 0.5,
                             "maxStreamsPerOrigin": 20000},
    },
}


def _matrix_values(case: str, watched: list[str]) -> list[str]:
    values = {k: (watched if v == "WATCHED" else v) for k, v in MATRIX[case].items()}
    return _sets(**values)


def test_helm_lint_strict(helm: Helm, watched: list[str]) -> None:
    for case in MATRIX:
        done = helm.run("lint", "--strict", str(CHART), f"--kube-version={helm.kube_version}",
                        *_matrix_values(case, watched), check=False)
        assert done.returncode == 0, f"{case}: {done.stdout}{done.stderr}"
        assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("case", list(MATRIX))
def test_rendered_chart_passes_server_side_dry_run(
    helm: Helm, cluster: Cluster, namespace: str, watched: list[str], case: str
) -> None:
    rendered = helm.template("sy", namespace, *_matrix_values(case, watched)).stdout
    docs = _docs(rendered)
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == len(docs), done.stdout
    assert all(line.endswith("(server dry run)") for line in lines), done.stdout
    _check_pod_conventions(docs)
    restricted = "watchNamespaces" in MATRIX[case]
    # The components' own grants; the aggregated roles for people are ClusterRoles always,
    # and so are caller identity's objects (TokenReview and SubjectAccessReview are
    # cluster-scoped; the ClusterRole callers bind). No other cluster-scoped grant exists
    # in restricted mode.
    def own(d: dict[str, Any]) -> bool:
        labels = d["metadata"].get("labels", {})
        return (labels.get("app.kubernetes.io/component") != "rbac"
                and "switchyard.dev/caller-identity" not in labels)

    kinds = {d["kind"] for d in docs if own(d)}
    assert ("ClusterRole" in kinds) is not restricted
    assert ("ClusterRoleBinding" in kinds) is not restricted
    if restricted:
        role_namespaces = {d["metadata"]["namespace"] for d in _by_kind(docs, "RoleBinding")}
        assert role_namespaces == {*watched, namespace}  # + the Lease Role at home
    # No admission webhook is served, so none may be registered: with failurePolicy Fail it
    # would reject every GatewayEndpoint write (the CRD's CEL rules do the admission checks).
    assert "ValidatingWebhookConfiguration" not in kinds
    if MATRIX[case].get("gateway.networkPolicy.enabled"):
        _check_network_policy(docs, namespace, watched if restricted else None)


def _check_pod_conventions(docs: Sequence[dict[str, Any]]) -> None:
    deployments = {d["metadata"]["name"].rsplit("-", 1)[1]: d
                   for d in _by_kind(docs, "Deployment")}
    assert set(deployments) == {"operator", "gateway"}
    for component, deployment in deployments.items():
        labels = deployment["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == component
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance",
                "app.kubernetes.io/version", "app.kubernetes.io/managed-by"} <= set(labels)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["args"][0] == component
        assert not container["image"].endswith(":latest")
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    gateway = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"


def _check_network_policy(docs: Sequence[dict[str, Any]], release_ns: str,
                          watched: list[str] | None) -> None:
    (policy,) = _by_kind(docs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    rule, *admin = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    # The admin port (/metrics, /ui) only from gateway.networkPolicy.adminFrom, if any.
    assert all(r["ports"] == [{"port": "admin", "protocol": "TCP"}] for r in admin)
    (peer,) = rule["from"]
    if watched:
        (expr,) = peer["namespaceSelector"]["matchExpressions"]
        assert sorted(expr["values"]) == sorted([*watched, release_ns])
    else:
        assert peer == {"namespaceSelector": {}}


def test_template_works_offline_without_kube_version(helm: Helm) -> None:
    """`helm template` with no cluster and no --kube-version, as a CI pipeline runs it: the
    helm we build carries the Kubernetes version stamp a released helm has (else it assumes
    1.20 and refuses the chart's kubeVersion)."""
    done = helm.run("template", "sy", str(CHART), "-n", "switchyard", check=False)
    assert done.returncode == 0, done.stderr
    assert "kind: Deployment" in done.stdout


@pytest.mark.parametrize(("values", "message"), [
    (["--set=gateway.replicas=two"], "at '/gateway/replicas': got string, want integer"),
    (["--set-string=gateway.port=8080"], "at '/gateway/port': got string, want integer"),
    (["--set=gateway.auth.enabled=yes"], "at '/gateway/auth/enabled': got string, want boolean"),
    (["--set=watchNamespaces=team-a"], "at '/watchNamespaces': got string, want array"),
    (["--set=gateway.replicsa=3"], "additional properties 'replicsa' not allowed"),
    (["--set=webhook.enabled=true"], "additional properties 'webhook' not allowed"),
    (["--set=watchNamespaces={Team_A}"], "at '/watchNamespaces/0'"),
    (["--set=gateway.upstream.maxBodyBytes=0"], "at '/gateway/upstream/maxBodyBytes'"),
    (["--set=gateway.upstream.maxSseLine=1"], "additional properties 'maxSseLine' not allowed"),
    # The old list form: an env key must be bound to hosts now.
    (["--set=allowedEnvKeys={OPENAI_API_KEY}"], "at '/allowedEnvKeys'"),
    (["--set-json=allowedBaseUrlHosts=[\"http://evil/\"]"], "at '/allowedBaseUrlHosts/0'"),
])
def test_wrong_values_fail_the_schema_with_a_clear_message(
    helm: Helm, values: list[str], message: str
) -> None:
    done = helm.template("sy", "default", *values, check=False)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize(("values", "message"), [
    (["--set=image.tag=latest"], 'image.tag: "latest" is not allowed'),
    (["--set=operator.leaderElection.enabled=false", "--set=operator.replicas=2"],
     "operator.replicas > 1 needs operator.leaderElection.enabled=true"),
    (["--set=gateway.auth.enabled=true"], "gateway.auth.enabled needs"),
    (["--set=gateway.terminationGracePeriodSeconds=10"], "must exceed gateway.drainSeconds"),
    (["--set=watchNamespaces={a}", "--set=gateway.defaultNamespace=b"],
     "is not in watchNamespaces"),
])
def test_incoherent_values_fail_with_a_clear_message(
    helm: Helm, values: list[str], message: str
) -> None:
    done = helm.template("sy", "default", *values, check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_upstream_limits_render_as_flags_the_gateway_accepts(helm: Helm) -> None:
    upstream = {"maxHeaderBytes": 32768, "maxBodyBytes": 8388608, "maxDecompressedBytes":
                9437184, "maxSseLineBytes": 1048576, "maxSseEventBytes": 2097152,
                "keepaliveSeconds": 3.5, "maxConnectionsPerOrigin": 4000,
                "capacityWaitSeconds": 0.5, "maxStreamsPerOrigin": 20000}
    docs = _docs(helm.template("sy", "default", *_sets(**{"gateway.upstream": upstream})).stdout)
    deployment = next(d for d in _by_kind(docs, "Deployment")
                      if d["spec"]["template"]["spec"]["containers"][0]["args"][0] == "gateway")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    parser = argparse.ArgumentParser()
    gateway_cmd.add_arguments(parser)
    settings = gateway_cmd.settings_from(parser.parse_args(args[1:]))
    assert (settings.upstream_max_header_bytes, settings.upstream_max_body_bytes,
            settings.upstream_max_decompressed_bytes, settings.upstream_max_sse_line_bytes,
            settings.upstream_max_sse_event_bytes, settings.upstream_keepalive_seconds) == (
        32768, 8388608, 9437184, 1048576, 2097152, 3.5)
    assert (settings.upstream_max_connections_per_origin,
            settings.upstream_capacity_wait_seconds,
            settings.upstream_max_streams_per_origin) == (4000, 0.5, 20000)
    defaults = _docs(helm.template("sy", "default").stdout)
    assert not any("--upstream-" in arg for d in _by_kind(defaults, "Deployment")
                   for arg in d["spec"]["template"]["spec"]["containers"][0]["args"])


def test_tracing_values_render_the_standard_otel_variables(helm: Helm) -> None:
    """The chart's tracing values turn the gateway's traces and OTLP metrics on and off
    through the standard variables only, as `telemetry` / `genai_metrics` read them."""
    def env_of(**values: Any) -> dict[str, str]:
        docs = _docs(helm.template("sy", "default", *_sets(**values)).stdout)
        deployment = next(d for d in _by_kind(docs, "Deployment") if d["spec"]["template"][
            "spec"]["containers"][0]["args"][0] == "gateway")
        return {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"][
            "containers"][0].get("env", []) if e["name"].startswith("OTEL_")}

    assert env_of() == {}
    both = env_of(**{"gateway.tracing.otlpEndpoint": "http://otel.observability:4318",
                     "gateway.tracing.metricExportIntervalMs": 15000})
    assert both["OTEL_METRIC_EXPORT_INTERVAL"] == "15000"
    assert telemetry.signal_enabled(both, "traces")
    assert telemetry.signal_enabled(both, "metrics")
    traces_only = env_of(**{"gateway.tracing.otlpEndpoint": "http://otel.observability:4318",
                            "gateway.tracing.metrics": False})
    assert telemetry.signal_enabled(traces_only, "traces")
    assert not telemetry.signal_enabled(traces_only, "metrics")


def test_optional_objects_needing_third_party_crds_render(helm: Helm) -> None:
    """The ServiceMonitor: rendered and checked here, not applied (its CRD belongs to the
    Prometheus Operator)."""
    docs = _docs(helm.template("sy", "switchyard", *_sets(**{
        "gateway.serviceMonitor.enabled": True, "gateway.serviceMonitor.labels": {"a": "b"},
    })).stdout)
    (monitor,) = _by_kind(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0] == {
        "port": "admin", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    # It scrapes the headless admin Service; the API Service exposes the API port only.
    services = {s["metadata"]["name"]: s for s in _by_kind(docs, "Service")}
    admin = services["sy-switchyard-gateway-admin"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        admin["metadata"]["labels"].items()
    assert [p["name"] for p in admin["spec"]["ports"]] == ["admin"]
    assert [p["name"] for p in services["sy-switchyard-gateway"]["spec"]["ports"]] == ["http"]


def test_admin_port_is_the_probes_and_not_in_the_service(helm: Helm) -> None:
    docs = _docs(helm.template("sy", "switchyard").stdout)
    (gateway,) = [d for d in _by_kind(docs, "Deployment")
                  if d["metadata"]["name"].endswith("-gateway")]
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert "--admin-port=8081" in container["args"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "admin", probe
    for service in _by_kind(docs, "Service"):
        assert all(p["targetPort"] != "admin" for p in service["spec"]["ports"])


def test_caller_identity_rbac_equals_the_documented_one(helm: Helm) -> None:
    """gateway.auth.kubernetes: the review rights of docs/gateway-auth-rbac.yaml (which the
    caller-identity e2e test runs under) and the ClusterRole callers are bound to."""
    docs = _docs(helm.template("sy", "switchyard-system", *_sets(**{
        "gateway.auth.kubernetes.enabled": True})).stdout)
    roles = {d["metadata"]["name"]: d for d in _by_kind(docs, "ClusterRole")}
    (want,) = _by_kind(_docs((ROOT / "docs" / "gateway-auth-rbac.yaml").read_text()),
                       "ClusterRole")
    got = roles["switchyard-system-sy-switchyard-gateway-caller-reviews"]
    assert _rule_set(got["rules"]) == _rule_set(want["rules"])
    example = _by_kind(_docs((ROOT / "docs" / "caller-rbac-example.yaml").read_text()),
                       "ClusterRole")[0]
    users = roles["switchyard-system-sy-switchyard-endpoint-user"]
    assert _rule_set(users["rules"]) == _rule_set(example["rules"])
    (gateway,) = [d for d in _by_kind(docs, "Deployment")
                  if d["metadata"]["name"].endswith("-gateway")]
    args = gateway["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--auth=kubernetes" in args and "--auth-audience=switchyard" in args
    off = _docs(helm.template("sy", "switchyard-system").stdout)
    assert not [d for d in _by_kind(off, "ClusterRole")
                if d["metadata"]["name"].endswith(("-endpoint-user", "-caller-reviews"))]


def test_chart_rules_equal_the_documented_minimal_rbac(helm: Helm) -> None:
    """The chart grants exactly what docs/*-rbac.yaml grant: the operator and gateway e2e
    tests run their processes under those files, so the chart's rules are proven enough."""
    docs = _docs(helm.template("sy", "switchyard-system").stdout)
    for component in ("operator", "gateway"):
        documented = _docs((ROOT / "docs" / f"{component}-rbac.yaml").read_text())
        (want,) = _by_kind(documented, "ClusterRole")
        (got,) = [d for d in _by_kind(docs, "ClusterRole")
                  if d["metadata"]["name"].endswith(f"-{component}")]
        assert _rule_set(got["rules"]) == _rule_set(want["rules"]), component
    lease_docs = _by_kind(_docs((ROOT / "docs" / "operator-rbac.yaml").read_text()), "Role")
    (lease_role,) = [d for d in _by_kind(docs, "Role")
                     if d["metadata"]["name"].endswith("-leader-election")]
    # The chart narrows get/update to the Lease's name; the verbs are the documented ones.
    assert _rule_set(lease_role["rules"], names=False) == _rule_set(lease_docs[0]["rules"])


def test_chart_signing_key_roles_equal_the_documented_ones(helm: Helm) -> None:
    docs = _docs(helm.template("sy", "switchyard-system").stdout)
    for component in ("operator", "gateway"):
        documented = _docs((ROOT / "docs" / f"{component}-rbac.yaml").read_text())
        (want,) = [d for d in _by_kind(documented, "Role")
                   if d["metadata"]["name"].endswith("-signing-key")]
        (got,) = [d for d in _by_kind(docs, "Role")
                  if d["metadata"]["name"] == f"sy-switchyard-{component}-signing-key"]
        assert _rule_set(got["rules"], names=False) == _rule_set(want["rules"], names=False)
        assert got["rules"][0]["resourceNames"] == ["sy-switchyard-signing-key"]
    (secret,) = [d for d in _by_kind(docs, "Secret")
                 if d["metadata"]["name"] == "sy-switchyard-signing-key"]
    assert len(base64.b64decode(secret["data"]["current"])) >= 32


def test_aggregated_roles_give_edit_endpoint_rights_but_not_status(helm: Helm) -> None:
    docs = _docs(helm.template("sy", "switchyard-system").stdout)
    roles = {d["metadata"]["name"]: d for d in _by_kind(docs, "ClusterRole")}
    edit = roles["switchyard-system-sy-switchyard-edit"]
    view = roles["switchyard-system-sy-switchyard-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {r for rule in edit["rules"] for r in rule["resources"]} == {"gatewayendpoints"}
    assert set(view["rules"][0]["verbs"]) == {"get", "list", "watch"}
    off = _docs(helm.template("sy", "switchyard-system",
                              "--set=rbac.aggregateToBuiltinRoles=false").stdout)
    assert not [d for d in _by_kind(off, "ClusterRole") if d["metadata"]["name"].endswith("-edit")]


def _rule_set(rules: Sequence[dict[str, Any]], names: bool = True) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    extra = tuple(rule.get("resourceNames", [])) if names else ()
                    out.add((group, resource, verb, *extra))
    return out


# --- install, upgrade, CRD upgrade path -------------------------------------------------


def _get(cluster: Cluster, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    return result


@pytest.fixture
def release(helm: Helm, cluster: Cluster, namespace: str) -> Iterator[str]:
    """A release name in `namespace`, uninstalled afterwards (cluster-scoped objects too)."""
    yield "sy"
    helm.run("uninstall", "sy", "-n", namespace, "--wait=false", check=False)


def test_install_then_upgrade(helm: Helm, cluster: Cluster, namespace: str,
                              watched: list[str], release: str) -> None:
    cluster.kubectl("create", "secret", "generic", "inbound-tokens", "-n", namespace,
                    "--from-literal=tokens=token-0123456789abcdef")
    helm.install(release, namespace, *_sets(
        watchNamespaces=watched, **{"gateway.auth.enabled": True,
                                    "gateway.auth.existingSecret": "inbound-tokens"}))

    gateway = _get(cluster, "deployment", f"{release}-switchyard-gateway", "-n", namespace)
    pod = gateway["spec"]["template"]
    args = pod["spec"]["containers"][0]["args"]
    assert args[:2] == ["gateway", "--host=0.0.0.0"]
    assert f"--namespaces={','.join(watched)}" in args
    assert f"--default-namespace={watched[0]}" in args
    assert "--auth-tokens-file=/etc/switchyard/auth/tokens" in args
    assert pod["metadata"]["annotations"]["checksum/auth"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["auth-tokens"]["secret"]["secretName"] == "inbound-tokens"
    assert gateway["spec"]["replicas"] == 2
    service = _get(cluster, "service", f"{release}-switchyard-gateway", "-n", namespace)
    assert service["spec"]["ports"][0]["port"] == 80
    operator = _get(cluster, "deployment", f"{release}-switchyard-operator", "-n", namespace)
    op_args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--lease-namespace={namespace}" in op_args
    assert f"--namespaces={','.join(watched)}" in op_args
    for ns in watched:
        cluster.kubectl("get", "role,rolebinding", "-n", ns, f"{release}-switchyard-gateway",
                        f"{release}-switchyard-operator")
    for component in ("gateway", "operator"):
        missing = cluster.kubectl("get", "clusterrole",
                                  f"{namespace}-{release}-switchyard-{component}", check=False)
        assert "NotFound" in missing.stderr  # restricted: no ClusterRole at all

    # Upgrade: more gateways behind an HPA.
    helm.upgrade(release, namespace, "--reuse-values", *_sets(**{
        "gateway.autoscaling.enabled": True, "gateway.autoscaling.minReplicas": 3}))
    status = json.loads(helm.run("status", release, "-n", namespace, "-o", "json").stdout)
    assert status["version"] == 2 and status["info"]["status"] == "deployed"
    hpa = _get(cluster, "hpa", f"{release}-switchyard-gateway", "-n", namespace)
    assert hpa["spec"]["minReplicas"] == 3


def test_crd_upgrade_path(helm: Helm, cluster: Cluster, namespace: str, release: str) -> None:
    """Helm never upgrades crds/; `kubectl apply --server-side -f crds/` does (install.md)."""
    current = yaml.safe_load((CRDS / f"{CRD}.yaml").read_text())
    description = current["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"]
    older = json.loads(json.dumps(current))
    older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "OLDER"

    def live_description() -> str:
        crd = _get(cluster, "crd", CRD)
        found: str = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"]
        return found

    try:
        # Pretend the cluster still runs an older CRD, owned by Helm as after a first install.
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=helm",
                        "-f", "-", input=yaml.safe_dump(older))
        helm.install(release, namespace)
        helm.upgrade(release, namespace, "--set=gateway.replicas=3")
        assert live_description() == "OLDER", (
            "helm upgrade changed the CRD: the documented path assumes it never does")

        # The documented step (docs/install.md), then helm upgrade.
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD}")
        helm.upgrade(release, namespace, "--set=gateway.replicas=2")
        assert live_description() == description
    finally:
        cluster.apply_crds(CRDS)


# --- RBAC, proven with kubectl auth can-i -----------------------------------------------


def _can(cluster: Cluster, sa: str, verb: str, resource: str, namespace: str | None,
         subresource: str | None = None) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={sa}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    if subresource:
        args.append(f"--subresource={subresource}")
    done = cluster.kubectl(*args, check=False)
    answer = done.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {done.stdout}{done.stderr}"
    return answer == "yes"


_WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*",
                "escalate", "bind", "impersonate", "approve", "sign"}
# Granted to every authenticated user by the default RBAC bootstrap policy.
_SELF_REVIEWS = {"selfsubjectreviews.authentication.k8s.io",
                 "selfsubjectaccessreviews.authorization.k8s.io",
                 "selfsubjectrulesreviews.authorization.k8s.io"}


def _granted(cluster: Cluster, sa: str, namespace: str) -> dict[str, set[str]]:
    """resource (with resourceNames) -> verbs that `sa` holds in `namespace`."""
    done = cluster.kubectl("auth", "can-i", "--list", f"--as={sa}", "-n", namespace)
    out: dict[str, set[str]] = {}
    for line in done.stdout.splitlines()[1:]:
        fields = re.split(r"\s{2,}", line.strip())
        if len(fields) < 2 or not fields[0] or fields[0].startswith("Resources"):
            continue
        resource, verbs = fields[0], fields[-1]
        names = fields[-2] if len(fields) == 4 else "[]"
        if resource in _SELF_REVIEWS or resource.startswith("["):  # non-resource URLs
            continue
        key = resource if names == "[]" else f"{resource}{names}"
        out.setdefault(key, set()).update(verbs.strip("[]").split())
    return out


def _writes(granted: dict[str, set[str]]) -> dict[str, set[str]]:
    return {r: v & _WRITE_VERBS for r, v in granted.items() if v & _WRITE_VERBS}


def test_rbac_least_privilege_restricted(helm: Helm, cluster: Cluster, namespace: str,
                                         watched: list[str], release: str) -> None:
    outside = cluster.create_namespace("e2e-chart-outside")
    try:
        helm.install(release, namespace, *_sets(watchNamespaces=watched))
        gateway = f"system:serviceaccount:{namespace}:{release}-switchyard-gateway"
        operator = f"system:serviceaccount:{namespace}:{release}-switchyard-operator"
        for ns in watched:
            for resource in ("configmaps", "secrets", "gatewayendpoints.switchyard.dev"):
                for verb in ("get", "list", "watch"):
                    assert _can(cluster, gateway, verb, resource, ns)
            assert _can(cluster, gateway, "create", "events", ns)
            # Exactly these grants, reads included.
            assert _granted(cluster, gateway, ns) == {
                "configmaps": {"get", "list", "watch"},
                "secrets": {"get", "list", "watch"},
                "gatewayendpoints.switchyard.dev": {"get", "list", "watch"},
                "events": {"create"},
            }

            assert _writes(_granted(cluster, operator, ns)) == {
                "gatewayendpoints.switchyard.dev": {"patch"},
                "gatewayendpoints.switchyard.dev/status": {"patch"},
                "configmaps": {"create", "update"},
                "events": {"create"},
            }
            for verb in ("get", "list", "watch"):
                assert _can(cluster, operator, verb, "secrets", ns)
                assert _can(cluster, operator, verb, "gatewayendpoints.switchyard.dev", ns)
                # list/watch: drift repair of the rendered ConfigMaps
                assert _can(cluster, operator, verb, "configmaps", ns)
            assert not _can(cluster, operator, "delete", "configmaps", ns)
            assert not _can(cluster, operator, "create", "leases.coordination.k8s.io", ns)

        # The signing key: get by name in the release namespace, for both; nothing else there.
        key = f"secrets/{release}-switchyard-signing-key"
        for sa in (gateway, operator):
            assert _can(cluster, sa, "get", key, namespace)
            assert not _can(cluster, sa, "update", key, namespace)
            assert not _can(cluster, sa, "get", "secrets/another", namespace)

        # Nothing outside the watched namespaces: not the release's own, not a third one;
        # but for the gateway replicas' status reports in the release namespace, which the
        # operator (Ready means served, in a restricted install too) and the other
        # replicas (shared cooldown) list/watch.
        for sa in (gateway, operator):
            for verb in ("get", "list", "watch"):
                assert _can(cluster, sa, verb, "configmaps", namespace), (sa, verb)
            for ns in (outside, namespace, "default", "kube-system"):
                for resource in ("secrets", "configmaps", "gatewayendpoints.switchyard.dev"):
                    if (ns, resource) == (namespace, "configmaps"):
                        continue
                    assert not _can(cluster, sa, "get", resource, ns), (sa, resource, ns)
                    assert not _can(cluster, sa, "list", resource, ns), (sa, resource, ns)
            assert not _can(cluster, sa, "list", "secrets", None)
            assert not _can(cluster, sa, "list", "customresourcedefinitions", None)
            assert not _can(cluster, sa, "list", "namespaces", None)
        assert _writes(_granted(cluster, gateway, outside)) == {}
        assert _writes(_granted(cluster, operator, outside)) == {}

        # Leader election: create any Lease (names cannot bind a create), only the
        # release's own by name for get/update, and only in the release namespace.
        lease = f"{release}-switchyard-operator"
        assert _writes(_granted(cluster, operator, namespace)) == {
            "leases.coordination.k8s.io": {"create"},
            f"leases.coordination.k8s.io[{lease}]": {"update"},
        }
        # The gateway's own status report: a ConfigMap per replica, in the release namespace.
        assert _writes(_granted(cluster, gateway, namespace)) == {
            "configmaps": {"create", "update"}}
    finally:
        cluster.delete_namespace(outside)


def test_rbac_least_privilege_cluster_wide(helm: Helm, cluster: Cluster, namespace: str,
                                           release: str) -> None:
    other = cluster.create_namespace("e2e-chart-anywhere")
    try:
        helm.install(release, namespace)
        gateway = f"system:serviceaccount:{namespace}:{release}-switchyard-gateway"
        operator = f"system:serviceaccount:{namespace}:{release}-switchyard-operator"
        for sa in (gateway, operator):
            assert _can(cluster, sa, "list", "secrets", None)
            assert _can(cluster, sa, "watch", "gatewayendpoints.switchyard.dev", None)
            assert not _can(cluster, sa, "list", "customresourcedefinitions", None)
            assert not _can(cluster, sa, "list", "nodes", None)
            assert not _can(cluster, sa, "create", "pods", other)
            assert not _can(cluster, sa, "update", "secrets", other)
        assert _writes(_granted(cluster, gateway, other)) == {"events": {"create"}}
        assert _writes(_granted(cluster, operator, other)) == {
            "gatewayendpoints.switchyard.dev": {"patch"},
            "gatewayendpoints.switchyard.dev/status": {"patch"},
            "configmaps": {"create", "update"},
            "events": {"create"},
        }
        assert not _can(cluster, operator, "create", "leases.coordination.k8s.io", other)
        assert _can(cluster, operator, "create", "leases.coordination.k8s.io", namespace)
    finally:
        cluster.delete_namespace(other)


def test_chart_report_role_equals_the_documented_one(helm: Helm) -> None:
    """The gateway may create and update ConfigMaps (its status report) in the release
    namespace only, exactly as docs/gateway-rbac.yaml grants."""
    docs = _docs(helm.template("sy", "switchyard-system").stdout)
    documented = _docs((ROOT / "docs" / "gateway-rbac.yaml").read_text())
    (want,) = [d for d in _by_kind(documented, "Role")
               if d["metadata"]["name"].endswith("-report")]
    (got,) = [d for d in _by_kind(docs, "Role") if d["metadata"]["name"].endswith("-report")]
    assert got["metadata"]["namespace"] == "switchyard-system"
    assert _rule_set(got["rules"]) == _rule_set(want["rules"])
