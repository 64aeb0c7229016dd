"""Fixtures of the node tests: a real node (kubelet, containerd, runc) and the chart on it.

The node is `switchyard_testing.node.Node`: a local control plane plus one node in its own
network and mount namespaces, with CoreDNS and the images built by hack/node/images.sh
(the project's from its Dockerfile). It needs root and takes minutes to build cold, so it
runs only when SWITCHYARD_NODE=1 (hack/test.sh sets it); otherwise, or when the machine
cannot run it, every test here skips and says why. Builds happen when collection ends,
outside the per-test timeout, like the e2e tests' control plane.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from switchyard_testing import binaries
from switchyard_testing import node as nodekit
from tests.node import support

NODE_DIR = Path(__file__).resolve().parent
ENABLE_ENV = "SWITCHYARD_NODE"

_BUILT = pytest.StashKey[tuple[Path, Path] | Exception]()


def _is_node(item: pytest.Item) -> bool:
    return NODE_DIR in Path(item.path).resolve().parents


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_node(item):
            item.add_marker(pytest.mark.node)


def _printer(config: pytest.Config) -> Callable[[str], None]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"[node] {line}")

    return say


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or not any(_is_node(i) for i in session.items):
        return
    if os.environ.get(ENABLE_ENV) != "1":
        return
    say = _printer(config)
    try:
        nodekit.host.preflight()
        started = time.monotonic()
        bin_dir = nodekit.build(say)
        binaries.locate(bin_dir)  # the control plane's binaries are there too
        say(f"binaries ready in {time.monotonic() - started:.0f}s")
        images = nodekit.images(bin_dir, say)
        say(f"images ready in {time.monotonic() - started:.0f}s")
        config.stash[_BUILT] = (bin_dir, images)
    except (nodekit.NodeUnavailable, binaries.BinariesUnavailable) as exc:
        config.stash[_BUILT] = exc


@pytest.fixture(scope="package")
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    nodekit.Node
]:
    """The running node (a Cluster: kubectl, helm), torn down and the machine restored."""
    if os.environ.get(ENABLE_ENV) != "1":
        pytest.skip(f"the local node runs only with {ENABLE_ENV}=1 (root; docs/testing.md)")
    built = request.config.stash.get(_BUILT, None)
    if built is None:
        pytest.skip("the node was not built (collection did not finish normally)")
    if isinstance(built, Exception):
        # Asked for (SWITCHYARD_NODE=1) under CI: a node that cannot run is a failure.
        if os.environ.get("CI"):
            pytest.fail(f"the local node cannot run on this CI machine: {built}", pytrace=False)
        pytest.skip(f"the local node cannot run here: {built}")
    bin_dir, images = built
    handle = nodekit.Node.start(bin_dir, images, progress=_printer(request.config))
    try:
        yield handle
    finally:
        if request.session.testsfailed:
            target = tmp_path_factory.getbasetemp() / "node-logs"
            target.mkdir(exist_ok=True)
            for name, path in handle.logs.items():
                if path.exists():
                    shutil.copyfile(path, target / f"{name}.log")
            _printer(request.config)(f"some tests failed: node logs saved in {target}")
        problems = handle.stop()
        if problems:  # the machine is not as it was: never pass quietly
            pytest.fail(f"the node's cleanup left: {problems}", pytrace=False)


@pytest.fixture(scope="package")
def release(node: nodekit.Node) -> Iterator[support.Release]:
    """charts/switchyard installed as release `switchyard` in namespace `switchyard`, with
    the locally built image, every pod Ready; uninstalled afterwards."""
    installed = support.Release.install(node)
    try:
        yield installed
    finally:
        installed.uninstall()


@pytest.fixture(scope="package")
def team(node: nodekit.Node, release: support.Release) -> Iterator[None]:
    """Namespace team-a: the example's key Secrets, the fake providers behind Services, the
    client pod and the example's GatewayEndpoint at the fakes."""
    node.kubectl("create", "namespace", support.TEAM)
    for secret in ("openai-key", "anthropic-key"):
        node.kubectl("-n", support.TEAM, "create", "secret", "generic", secret,
                     "--from-literal=api-key=sk-fake-not-a-secret")
        # The gateway reads only Secrets labelled as credentials (docs/security.md).
        node.kubectl("-n", support.TEAM, "label", "secret", secret,
                     "switchyard.dev/credential=true")
    support.deploy_fakes(node, support.FAKES)
    support.start_client_pod(node)
    support.applied(node, support.example())
    yield
    node.kubectl("delete", "namespace", support.TEAM, "--wait=false")


