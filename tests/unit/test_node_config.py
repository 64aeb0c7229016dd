"""The local node's configuration files (switchyard_testing.node.config) keep the facts the
node depends on and its network guard: pure text checks, no root, no node."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from switchyard_testing.node import config

ROOT = Path("/tmp/node-root")


def test_pods_get_no_default_route_and_no_masquerade() -> None:
    (bridge,) = json.loads(config.cni(ROOT))["plugins"]
    assert bridge["ipMasq"] is False and bridge["isDefaultGateway"] is False
    assert bridge["ipam"]["routes"] == [{"dst": config.SERVICE_CIDR}]


def test_coredns_forwards_no_name_beyond_the_cluster() -> None:
    assert "forward" not in config.COREDNS_CONFIG
    assert "kubernetes cluster.local" in config.COREDNS_CONFIG
    (service,) = [m for m in config.coredns_manifests() if m["kind"] == "Service"]
    assert service["spec"]["clusterIP"] == config.DNS_IP


def test_kubelet_runs_on_cgroup_v1_and_listens_on_the_node_address_only() -> None:
    kubelet = yaml.safe_load(config.kubelet(ROOT, ROOT / "ca.crt"))
    assert kubelet["failCgroupV1"] is False
    assert kubelet["address"] == config.NODE_IP
    assert kubelet["healthzBindAddress"] == "127.0.0.1"
    assert kubelet["readOnlyPort"] == 0
    assert kubelet["clusterDNS"] == [config.DNS_IP]


def test_containerd_clamps_oom_score_and_keeps_everything_under_its_folder() -> None:
    text = config.containerd(ROOT, Path("/usr/sbin/runc"), ROOT / "cni")
    assert "restrict_oom_score_adj = true" in text
    assert "disable = true" in text  # NRI off: no socket under /var/run/nri
    for line in text.splitlines():
        if "= '/" in line and "BinaryName" not in line:
            assert f"'{ROOT}" in line, line


def test_kube_proxy_stays_off_machine_wide_sysctls() -> None:
    proxy = yaml.safe_load(config.kube_proxy(ROOT / "admin.kubeconfig"))
    assert proxy["conntrack"]["maxPerCore"] == 0 and proxy["conntrack"]["min"] == 0
    assert proxy["iptables"]["localhostNodePorts"] is False
    assert proxy["nodePortAddresses"] == [f"{config.NODE_IP}/32"]
