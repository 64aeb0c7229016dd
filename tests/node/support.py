"""Helpers of the node tests: helm on the node, the release, fake providers as pods behind
Services, a client pod with the OpenAI SDK, and waiting.

Used by tests/node only. Every object lives in the node's cluster; every request stays
inside the node's network (client pod -> gateway Service -> fake-provider Services).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from switchyard_testing.node import Node

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchyard"
NAMESPACE = "switchyard"
RELEASE = "switchyard"
IMAGE_REPOSITORY = "switchyard.local/switchyard"
IMAGE_TAG = "dev"
CLIENT_IMAGE = "switchyard.local/client:dev"
GATEWAY_URL = f"http://switchyard-gateway.{NAMESPACE}/v1"
IMAGE_VALUES = (
    f"--set=image.repository={IMAGE_REPOSITORY}",
    f"--set=image.tag={IMAGE_TAG}",
    "--set=image.pullPolicy=Never",
)


def wait_for(check: Callable[[], bool], timeout: float, what: str, step: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def helm(node: Node, *args: str, check: bool = True,
         timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """helm with the node's admin kubeconfig and folders of its own (never $HOME's)."""
    home = node.root / "helm"
    env = {
        **os.environ,
        "KUBECONFIG": str(node.kubeconfig),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    argv = [str(node.bin_dir / "helm"), *args, f"--kubeconfig={node.kubeconfig}"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def pods(node: Node, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = node.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    deleting = pod["metadata"].get("deletionTimestamp") is not None
    return not deleting and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


def component(name: str) -> str:
    return f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={name}"


class Release:
    """The chart installed on the node as release `switchyard` in namespace `switchyard`."""

    def __init__(self, node: Node, values: tuple[str, ...]) -> None:
        self.node = node
        self.values = values

    @classmethod
    def install(cls, node: Node, *values: str) -> Release:
        all_values = (*IMAGE_VALUES, *values)
        helm(node, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace",
             "--wait", "--timeout=5m", *all_values)
        return cls(node, all_values)

    def upgrade(self, *values: str, wait: bool = True) -> None:
        self.values = (*self.values, *values)
        extra = ["--wait", "--timeout=5m"] if wait else []
        helm(self.node, "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, *extra, *self.values)

    def manifest(self) -> list[dict[str, Any]]:
        text = helm(self.node, "get", "manifest", RELEASE, "-n", NAMESPACE).stdout
        return [d for d in yaml.safe_load_all(text) if d]

    def pods(self, name: str) -> list[dict[str, Any]]:
        return pods(self.node, NAMESPACE, component(name))

    def ready(self, name: str) -> list[dict[str, Any]]:
        return [p for p in self.pods(name) if is_ready(p)]

    def uninstall(self) -> None:
        helm(self.node, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout=3m",
             check=False)


def exec_in(node: Node, namespace: str, pod: str, *argv: str, check: bool = True,
            timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return node.kubectl("exec", "-n", namespace, pod, "--", *argv, check=check,
                        timeout=timeout)


# --- fake providers as pods behind Services, and the client pod -------------------------

TEAM = "team-a"
CLIENT_POD = "client"
_CLIENT_SCRIPT = (Path(__file__).parent / "client.py").read_text()


def fake_url(name: str, provider: str) -> str:
    """Base URL of fake `name` as its provider's SDK means it (OpenAI's includes /v1)."""
    host = f"http://fake-{name}.{TEAM}.svc.cluster.local"
    return f"{host}/v1" if provider == "openai" else host


def deploy_fakes(node: Node, fakes: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    """One Deployment and Service per fake: {name: (provider, extra CLI args)}; waits Ready.
    They run the project image's `python -m switchyard_testing.fakes`."""
    objects: list[dict[str, Any]] = []
    for name, (provider, extra) in fakes.items():
        labels = {"app": f"fake-{name}"}
        argv = ["python", "-m", "switchyard_testing.fakes", "--provider", provider,
                "--host", "0.0.0.0", "--port", "8080", "--name", name, *extra]
        objects += [
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": f"fake-{name}", "namespace": TEAM},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels}, "spec": {
                          "containers": [{
                              "name": "fake", "image": f"{IMAGE_REPOSITORY}:{IMAGE_TAG}",
                              "imagePullPolicy": "Never", "command": argv,
                              "ports": [{"containerPort": 8080}],
                              "readinessProbe": {"tcpSocket": {"port": 8080},
                                                 "periodSeconds": 1},
                          }]}}}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": f"fake-{name}", "namespace": TEAM},
             "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
        ]
    node.apply(objects)
    for name in fakes:
        node.kubectl("-n", TEAM, "rollout", "status", f"deployment/fake-{name}",
                     "--timeout=180s", timeout=190)


def start_client_pod(node: Node) -> None:
    node.apply([{
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": CLIENT_POD, "namespace": TEAM},
        "spec": {"containers": [{"name": "client", "image": CLIENT_IMAGE,
                                 "imagePullPolicy": "Never"}],
                 "terminationGracePeriodSeconds": 1},
    }])
    node.kubectl("-n", TEAM, "wait", "--for=condition=Ready", f"pod/{CLIENT_POD}",
                 "--timeout=120s", timeout=130)


def client_argv(node: Node, *args: str) -> list[str]:
    return [str(node.kubectl_path), f"--kubeconfig={node.kubeconfig}",
            f"--cache-dir={node.work_dir / 'kubectl-cache'}", "exec", "-i", "-n", TEAM,
            CLIENT_POD, "--", "python", "-", *args]


def run_client(node: Node, *args: str, timeout: float = 180.0) -> dict[str, dict[str, int]]:
    """Run client.py in the client pod; its JSON summary."""
    done = subprocess.run(client_argv(node, *args), input=_CLIENT_SCRIPT, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    result: dict[str, dict[str, int]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class SteadyTraffic:
    """client.py's `steady` mode running in the background while a test disrupts things."""

    def __init__(self, node: Node, seconds: float, model: str, threads: int,
                 retries: int = 0) -> None:
        self.seconds = seconds
        self.proc = subprocess.Popen(
            client_argv(node, "steady", str(seconds), model, str(threads), str(retries)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdin is not None
        self.proc.stdin.write(_CLIENT_SCRIPT)
        self.proc.stdin.close()
        self.proc.stdin = None  # fed: communicate() must not flush it again

    def result(self) -> dict[str, dict[str, int]]:
        out, err = self.proc.communicate(timeout=self.seconds + 120)
        assert self.proc.returncode == 0, err
        result: dict[str, dict[str, int]] = json.loads(out.strip().splitlines()[-1])
        return result


# --- examples/01-ab-split.yaml at the fakes ----------------------------------------------

EXAMPLE = ROOT / "examples" / "01-ab-split.yaml"
MODEL = f"{TEAM}/chat"
# Fake per (provider, model) of the example; "broken" answers 503 to everything.
FAKES: dict[str, tuple[str, tuple[str, ...]]] = {
    "gpt5": ("openai", ()),
    "claude": ("anthropic", ()),
    "gpt5-mini": ("openai", ()),
    "haiku": ("anthropic", ()),
    "broken": ("openai", ("--fault-rate", "1", "--faults", "unavailable")),
}
FAKE_OF_MODEL: dict[str, str] = {
    "gpt-5": "gpt5",
    "claude-sonnet-4-5": "claude",
    "gpt-5-mini": "gpt5-mini",
    "claude-haiku-4-5": "haiku",
}


def example(broken: tuple[str, ...] = ()) -> dict[str, Any]:
    """The example's GatewayEndpoint, every target at its fake; models in `broken` at the
    broken fake instead (an OpenAI-speaking one: the provider follows)."""
    (endpoint,) = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    endpoint = copy.deepcopy(endpoint)
    for target in [*endpoint["spec"]["trafficSplit"], *endpoint["spec"]["fallbacks"]]:
        if target["model"] in broken:
            target["provider"] = "openai"
            target["baseUrl"] = fake_url("broken", "openai")
        else:
            target["baseUrl"] = fake_url(FAKE_OF_MODEL[target["model"]],
                                                 target["provider"])
    return endpoint


def applied(node: Node, endpoint: dict[str, Any]) -> None:
    node.apply([endpoint])
    node.kubectl("-n", TEAM, "wait", "--for=condition=Ready", "gatewayendpoint/chat",
                 "--timeout=60s", timeout=70)


