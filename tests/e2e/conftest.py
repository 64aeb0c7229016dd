"""Fixtures of the e2e tests: a real Kubernetes API server, and a namespace per test.

`cluster` (session) is the local control plane of `switchyard_testing.controlplane` (etcd,
kube-apiserver, kube-controller-manager built from Go modules and cached), or, when
SWITCHYARD_E2E_KUBECONFIG is set, the cluster that file names (kind, for instance). An
ambient KUBECONFIG is never used: it may point at production. Either way the CRD from
crds/ is installed before the first test.

Binaries are built (a cold build takes minutes) when collection ends rather than inside a
fixture, so the per-test timeout does not cut the first build short. Without Go the e2e
tests skip with a hint, except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from switchyard_testing import binaries, stack
from switchyard_testing.background import BackgroundLoop
from switchyard_testing.cluster import Cluster
from switchyard_testing.controlplane import ControlPlane
from switchyard_testing.fakes import FakeOpenAI
from tests.e2e.support import DEADLINE, System

E2E_DIR = Path(__file__).resolve().parent
ROOT = E2E_DIR.parents[1]
CRDS = ROOT / "crds"
KUBECONFIG_ENV = "SWITCHYARD_E2E_KUBECONFIG"
KEEP_ENV = "SWITCHYARD_E2E_KEEP"  # keep the control plane's folder (data, logs) after the run
HINT = (
    "install Go >= 1.26 (the first run builds kube-apiserver, etcd and kubectl into "
    "~/.cache/switchyard), or set SWITCHYARD_E2E_KUBECONFIG to a test cluster's kubeconfig"
)

_BINARIES = pytest.StashKey[Path | binaries.BinariesUnavailable]()


def _is_e2e(item: pytest.Item) -> bool:
    return E2E_DIR in Path(item.path).resolve().parents


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or not any(_is_e2e(i) for i in session.items):
        return
    try:
        config.stash[_BINARIES] = binaries.locate(progress=_printer(config))
    except binaries.BinariesUnavailable as exc:
        config.stash[_BINARIES] = exc


def _printer(config: pytest.Config) -> Callable[[str], None]:
    """Print a progress line on the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[e2e] {line}")

    return say


def _unavailable(reason: str) -> NoReturn:
    # A CI run that silently skips the e2e tests would prove nothing.
    if os.environ.get("CI"):
        pytest.fail(f"e2e tests cannot run on this CI machine: {reason}", pytrace=False)
    pytest.skip(f"e2e tests need a Kubernetes API server: {reason}; {HINT}")


def _bin_dir(config: pytest.Config) -> Path:
    found = config.stash.get(_BINARIES, None)
    if found is None:  # collection_finish did not run (plugins, -p no:...): build now
        try:
            found = binaries.locate(progress=_printer(config))
        except binaries.BinariesUnavailable as exc:
            found = exc
    if isinstance(found, binaries.BuildFailed):
        raise found  # a broken build is a bug to see, not a reason to skip
    if isinstance(found, binaries.BinariesUnavailable):
        _unavailable(str(found))
    return found


def _external_cluster(kubeconfig: Path, config: pytest.Config, work_dir: Path) -> Cluster:
    if not kubeconfig.is_file():
        pytest.fail(f"{KUBECONFIG_ENV}={kubeconfig}: no such file", pytrace=False)
    found = config.stash.get(_BINARIES, None)
    if isinstance(found, Path):
        return Cluster(kubeconfig, found, work_dir)
    on_path = shutil.which("kubectl")
    if on_path is None:
        _unavailable(f"kubectl is not on PATH and could not be built ({found})")
    return Cluster(kubeconfig, Path(str(on_path)).parent, work_dir)


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Admin access to the e2e cluster, with the GatewayEndpoint CRD installed."""
    config = request.config
    external = os.environ.get(KUBECONFIG_ENV)
    if external:
        handle = _external_cluster(Path(external), config, tmp_path_factory.mktemp("cluster"))
        handle.apply_crds(CRDS)
        yield handle
        return
    plane = ControlPlane.start(
        _bin_dir(config),
        progress=_printer(config),
        keep=bool(os.environ.get(KEEP_ENV)),
        crds=CRDS,
    )
    try:
        yield plane
    finally:
        if request.session.testsfailed:
            _save_logs(plane, tmp_path_factory, config)
        plane.stop()


def _save_logs(
    plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory, config: pytest.Config
) -> None:
    target = tmp_path_factory.getbasetemp() / "controlplane-logs"
    shutil.copytree(plane.root / "logs", target, dirs_exist_ok=True)
    _printer(config)(f"some tests failed: control plane logs saved in {target}")


@pytest.fixture
def local_control_plane(cluster: Cluster) -> ControlPlane:
    """The local control plane itself, for tests that stop or restart the API server.

    Skips against an external cluster (SWITCHYARD_E2E_KUBECONFIG), which tests must not
    disrupt.
    """
    if not isinstance(cluster, ControlPlane):
        pytest.skip("needs the local control plane (restarts its API server)")
    return cluster


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards without waiting."""
    name = cluster.create_namespace(f"e2e-{request.node.name}")
    yield name
    cluster.delete_namespace(name, wait=False)


@pytest.fixture(scope="module")
def background_loop() -> Iterator[BackgroundLoop]:
    """An event loop in a thread, for the fake providers."""
    with BackgroundLoop() as background:
        yield background


@pytest.fixture(scope="module")
def fakes(background_loop: BackgroundLoop) -> Iterator[dict[str, FakeOpenAI]]:
    """Three fake OpenAI-compatible providers on loopback: a, b and fb."""
    loop = background_loop
    started = {name: loop.run(FakeOpenAI.start(name=name)) for name in ("a", "b", "fb")}
    yield started
    for fake in started.values():
        loop.run(fake.close())


@pytest.fixture(scope="module")
def accounts(cluster: Cluster) -> dict[str, Path]:
    """Kubeconfigs of the operator's and the gateway's ServiceAccounts (docs/*-rbac.yaml)."""
    home = cluster.create_namespace("e2e-sy-system")
    return {
        "operator": stack.bind_service_account(cluster, stack.OPERATOR_RBAC, home),
        "gateway": stack.bind_service_account(cluster, stack.GATEWAY_RBAC, home),
    }


@pytest.fixture
def other_namespace(cluster: Cluster) -> Iterator[str]:
    """A second namespace, watched by `system` too."""
    name = cluster.create_namespace("e2e-other")
    yield name
    cluster.delete_namespace(name, wait=False)


@pytest.fixture
def system(
    cluster: Cluster,
    fakes: dict[str, FakeOpenAI],
    background_loop: BackgroundLoop,
    namespace: str,
    other_namespace: str,
    accounts: dict[str, Path],
    tmp_path: Path,
) -> Iterator[System]:
    """Operator and gateway running against the e2e cluster, over the fakes."""
    loop = background_loop
    for fake in fakes.values():
        loop.call(fake.script.clear)
        loop.call(fake.requests.clear)
    sys_ = System(cluster, fakes, loop, namespace, other_namespace, accounts, tmp_path)
    sys_.secret("key-one")
    sys_.operator.start()
    sys_.gateway.start()
    try:
        sys_.gateway.wait_for("/readyz", timeout=DEADLINE)
        yield sys_
    finally:
        sys_.gateway.stop()
        sys_.operator.stop()
