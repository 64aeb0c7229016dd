"""The demo's running parts: control plane, operator, gateway and fake providers.

`DemoSystem.start` brings them up in order (the CRD first, then RBAC-bound ServiceAccounts,
the operator and the gateway as local processes, one fake per target on a background
loop), applies the overlaid example with `kubectl apply`, and waits until the endpoint
serves. `close` stops everything it started, in reverse order, and removes its temporary
folder; it is safe after a partial start and safe to call twice.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from switchyard_cli.demo import overlay
from switchyard_testing import stack
from switchyard_testing.background import BackgroundLoop
from switchyard_testing.controlplane import ControlPlane
from switchyard_testing.fakes import Fault
from switchyard_testing.fakes.registry import FAKES
from switchyard_testing.fakes.server import FakeProvider

CRDS = stack.ROOT / "crds"
SYSTEM_NAMESPACE = "switchyard-system"
READY_TIMEOUT = 90.0

Say = Callable[[str], None]


class DemoError(RuntimeError):
    """A part did not come up; the message says which and ends with its log tail."""


class DemoSystem:
    """Everything the demo runs. Use as a context manager, or call `close()`."""

    def __init__(self, bin_dir: Path, say: Say, port: int | None = None) -> None:
        self.bin_dir = bin_dir
        self.say = say
        self.port = port
        self.work = Path(tempfile.mkdtemp(prefix="switchyard-demo-"))
        self.endpoint = overlay.load_example()
        self.namespace = str(self.endpoint["metadata"]["namespace"])
        self.model = f"{self.namespace}/{self.endpoint['metadata']['name']}"
        self.plane: ControlPlane | None = None
        self.loop: BackgroundLoop | None = None
        self.fakes: dict[str, FakeProvider] = {}
        self.operator: stack.Service | None = None
        self.gateway: stack.Service | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> DemoSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def temp_dirs(self) -> list[Path]:
        """The folders this demo created (removed by `close`)."""
        return [self.work] + ([self.plane.root] if self.plane else [])

    def pids(self) -> dict[str, int]:
        """Process name -> pid of every child process started so far."""
        found: dict[str, int] = {}
        procs = []
        if self.plane is not None:
            procs += [self.plane.etcd, self.plane.apiserver, self.plane.controller_manager]
        procs += [s.process for s in (self.operator, self.gateway) if s is not None]
        for proc in procs:
            if proc.pid is not None:
                found[proc.name] = proc.pid
        return found

    def start(self) -> None:
        """Bring every part up and serve the example; raises DemoError or KubectlError."""
        self.say("starting the control plane (etcd, kube-apiserver, kube-controller-manager)")
        self.plane = ControlPlane.start(self.bin_dir, progress=self.say, crds=CRDS)
        self._stack.callback(self.plane.stop)
        self.plane.kubectl("create", "namespace", SYSTEM_NAMESPACE)
        self.plane.kubectl("create", "namespace", self.namespace)
        operator_config = stack.bind_service_account(self.plane, stack.OPERATOR_RBAC,
                                                     SYSTEM_NAMESPACE)
        gateway_config = stack.bind_service_account(self.plane, stack.GATEWAY_RBAC,
                                                    SYSTEM_NAMESPACE)
        self._start_fakes()
        self.say("starting the operator and the gateway (ServiceAccount tokens, docs/*-rbac.yaml)")
        self.operator = stack.operator(operator_config, [self.namespace], self.work,
                                       extra=["--allowed-base-url-hosts", "127.0.0.1"])
        self.gateway = stack.gateway(gateway_config, self.work, namespaces=[self.namespace],
                                     default_namespace=self.namespace, port=self.port)
        for service in (self.operator, self.gateway):
            service.start()
            self._stack.callback(service.stop)
        self.gateway.wait_for("/readyz", timeout=READY_TIMEOUT)
        self.say(f"kubectl apply: Secrets with fake keys, then {overlay.EXAMPLE.name} "
                 "(targets pointed at the loopback fakes)")
        self.plane.apply(overlay.secrets(self.endpoint))
        self.apply_weights(None)
        self._wait_serving()

    def apply_weights(self, weights: dict[str, int] | None) -> None:
        """`kubectl apply` the overlaid example, with `weights` by split target name."""
        assert self.plane is not None
        urls = {name: fake.base_url for name, fake in self.fakes.items()}
        self.plane.apply([overlay.overlay(self.endpoint, urls, weights)])

    def fail(self, target: str) -> None:
        """Make `target`'s fake answer every request with 503 (its provider is down)."""
        self._script(target, {Fault.UNAVAILABLE: 1.0})

    def heal(self, target: str) -> None:
        """Make `target`'s fake healthy again."""
        self._script(target, {})

    def kubectl_hint(self) -> str:
        """A kubectl command line a human can paste (admin kubeconfig)."""
        assert self.plane is not None
        return f"{self.plane.kubectl_path} --kubeconfig {self.plane.kubeconfig}"

    def gateway_url(self) -> str:
        """The gateway's base URL."""
        assert self.gateway is not None
        return self.gateway.url

    def gateway_admin_url(self) -> str:
        """The gateway's admin URL (probes, /metrics, the /ui status page)."""
        assert self.gateway is not None
        return self.gateway.admin_url

    def close(self) -> None:
        """Stop every process and fake (reverse order) and remove the temporary folders."""
        try:
            self._stack.close()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def logs(self) -> str:
        """The operator's and the gateway's log tails, for error messages."""
        parts = [f"--- {s.process.name}\n{s.process.tail(20)}"
                 for s in (self.operator, self.gateway) if s is not None]
        return "\n".join(parts)

    def _start_fakes(self) -> None:
        self.loop = BackgroundLoop().__enter__()
        self._stack.callback(self.loop.close)
        for info in overlay.targets(self.endpoint):
            cls = FAKES[info.provider]
            fake = self.loop.run(cls.start(name=info.name,
                                           expected_key=overlay.fake_key(info.secret)))
            self.fakes[info.name] = fake
            self._stack.callback(self.loop.run, fake.close())
        listing = ", ".join(f"{name} {fake.url}" for name, fake in self.fakes.items())
        self.say(f"fake providers on loopback: {listing}")

    def _script(self, target: str, rates: dict[Fault, float]) -> None:
        assert self.loop is not None
        self.loop.call(self.fakes[target].script.set_rates, rates)

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._chat_status() == 200:
                return
            time.sleep(0.3)
        raise DemoError(f"{self.model} not served after {READY_TIMEOUT:.0f}s\n{self.logs()}")

    def _chat_status(self) -> int:
        body: dict[str, Any] = {"model": self.model,
                                "messages": [{"role": "user", "content": "hi"}]}
        request = urllib.request.Request(
            self.gateway_url() + "/v1/chat/completions", data=orjson.dumps(body),
            headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0
