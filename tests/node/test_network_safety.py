"""The node's network guard, from inside a pod: pods have no default route, CoreDNS answers
no name outside the cluster (it forwards nothing), and a Service whose endpoint an attacker
points at the host (outside the pod and service ranges) cannot be reached: the egress rule
drops the forwarded packets, and a listener on the host's node address sees nothing."""

from __future__ import annotations

import contextlib
import socket
import threading

from switchyard_testing.node import Node, config
from tests.node import support
from tests.node.support import CLIENT_POD, TEAM

_PROBE = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((host, port), timeout=4).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def _in_pod(node: Node, *argv: str) -> str:
    return support.exec_in(node, TEAM, CLIENT_POD, *argv).stdout.strip()


def test_pods_have_no_default_route_and_no_outside_names(node: Node, team: None) -> None:
    routes = _in_pod(node, "cat", "/proc/net/route").splitlines()[1:]
    destinations = {line.split()[1] for line in routes}
    assert "00000000" not in destinations, routes
    lookup = "import socket\ntry:\n socket.getaddrinfo('example.com', 80)\n print('resolved')\n" \
             "except OSError as e:\n print('no')"
    assert _in_pod(node, "python", "-c", lookup) == "no"
    inside = "import socket; print(socket.gethostbyname('switchyard-gateway.switchyard'))"
    assert _in_pod(node, "python", "-c", inside).startswith("10.0.0.")


def test_a_service_pointing_outside_the_pod_network_is_unreachable(
    node: Node, team: None
) -> None:
    # A listener on the host's end of the node link: on this machine, so a failed guard
    # would only ever reach it, never anything beyond.
    listener = socket.create_server((config.HOST_IP, 0))
    port = listener.getsockname()[1]
    accepted: list[object] = []
    listener.settimeout(25)

    def accept() -> None:
        with contextlib.suppress(OSError):  # timed out: nothing came, as it should be
            accepted.append(listener.accept())

    waiter = threading.Thread(target=accept)
    waiter.start()
    node.apply([
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "to-host", "namespace": TEAM},
         "spec": {"ports": [{"port": 80, "targetPort": port}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "to-host", "namespace": TEAM,
                      "labels": {"kubernetes.io/service-name": "to-host"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [config.HOST_IP]}],
         "ports": [{"port": port, "protocol": "TCP"}]},
    ])
    try:
        ip = node.kubectl("-n", TEAM, "get", "service", "to-host", "-o",
                          "jsonpath={.spec.clusterIP}").stdout
        results = [_in_pod(node, "python", "-c", _PROBE, ip, "80") for _ in range(3)]
        waiter.join()
        assert accepted == [], "a pod reached the host through a Service"
        assert "connected" not in results, results
    finally:
        listener.close()
        node.kubectl("-n", TEAM, "delete", "service,endpointslice", "to-host")
