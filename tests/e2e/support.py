"""Shared pieces of the e2e tests: polling, and the running system (operator + gateway).

`System` is the whole product on the e2e cluster: the operator and the gateway as local
processes on ServiceAccount tokens bound to docs/*-rbac.yaml, fake OpenAI-compatible
providers on loopback, and the official `openai` SDK as the client.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest

from switchyard_testing import stack
from switchyard_testing.background import BackgroundLoop
from switchyard_testing.cluster import Cluster
from switchyard_testing.fakes import FakeOpenAI

T = TypeVar("T")
DEADLINE = 90.0


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = DEADLINE,
    context: Callable[[], str] = lambda: "",
) -> T:
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}\n{context()}")
        time.sleep(0.2)


class System:
    """Operator + gateway watching two namespaces, and helpers to drive them."""

    def __init__(
        self,
        cluster: Cluster,
        fakes: dict[str, FakeOpenAI],
        loop: BackgroundLoop,
        namespace: str,
        other: str,
        accounts: dict[str, Path],
        log_dir: Path,
    ) -> None:
        self.cluster, self.fakes, self.loop = cluster, fakes, loop
        self.namespace, self.other = namespace, other
        self.operator = stack.operator(
            accounts["operator"],
            [namespace, other],
            log_dir,
            extra=["--allowed-base-url-hosts", "127.0.0.1"],
        )
        self.gateway = stack.gateway(
            accounts["gateway"], log_dir, namespaces=[namespace, other], default_namespace=namespace
        )
        self.client = openai.OpenAI(
            base_url=self.gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30
        )

    def logs(self) -> str:
        return (
            f"--- operator\n{self.operator.process.tail(30)}\n"
            f"--- gateway\n{self.gateway.process.tail(30)}"
        )

    def secret(self, value: str, namespace: str | None = None) -> None:
        self.cluster.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": "fake-key",
                        "namespace": namespace or self.namespace,
                        "labels": {"switchyard.dev/credential": "true"},
                    },
                    "stringData": {"api-key": value},
                }
            ]
        )

    def target(self, fake: str, weight: int | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": fake,
            "provider": "openai-compatible",
            "model": f"model-{fake}",
            "baseUrl": self.fakes[fake].base_url,
            "apiKey": {"secretKeyRef": {"name": "fake-key", "key": "api-key"}},
        }
        if weight is not None:
            spec["weight"] = weight
        return spec

    def endpoint(
        self, name: str, weights: dict[str, int], fallbacks: list[str], namespace: str | None = None
    ) -> None:
        self.cluster.apply(
            [
                {
                    "apiVersion": "switchyard.dev/v1alpha1",
                    "kind": "GatewayEndpoint",
                    "metadata": {"name": name, "namespace": namespace or self.namespace},
                    "spec": {
                        "trafficSplit": [self.target(f, w) for f, w in weights.items()],
                        "fallbacks": [
                            {**self.target(f), "name": f"{f}-fallback"} for f in fallbacks
                        ],
                        "policy": {
                            "attemptTimeoutSeconds": 5,
                            "requestTimeoutSeconds": 20,
                            "cooldown": {"failureThreshold": 2, "seconds": 60},
                        },
                    },
                }
            ]
        )

    def chat(self, model: str) -> tuple[int, dict[str, str]]:
        """(status, headers) of one chat completion through the gateway."""
        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
            raw.parse()
            return raw.status_code, dict(raw.headers)
        except openai.APIStatusError as exc:
            return exc.status_code, dict(exc.response.headers)

    def shares(self, model: str, n: int) -> collections.Counter[str]:
        served: collections.Counter[str] = collections.Counter()
        for _ in range(n):
            status, headers = self.chat(model)
            assert status == 200, (status, headers)
            served[headers["x-switchyard-target"]] += 1
        return served

    def serving(self, model: str, status: int = 200) -> Callable[[], bool]:
        return lambda: self.chat(model)[0] == status

    def configmap_hash(self, name: str) -> str:
        done = self.cluster.kubectl(
            "get",
            "configmap",
            f"gwe-{name}",
            "-n",
            self.namespace,
            "-o",
            "json",
            "--ignore-not-found",
        )
        if not done.stdout.strip():
            return ""
        return str(
            json.loads(done.stdout)["metadata"]["annotations"].get("switchyard.dev/spec-hash", "")
        )

    def metrics(self) -> str:
        return self.gateway.admin_get("/metrics")[1].decode()
