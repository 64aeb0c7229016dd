"""The configuration files of the local node's components, as text.

Called by `switchyard_testing.node.Node` only, which writes them into the node's folder. Each
function is pure: it knows the facts that make a node run on the project's machines (see
docs/testing.md, "The local node") and nothing about processes. Must not name any path
outside `root` except the runc binary and the CNI plugin folder it is given.
"""

from __future__ import annotations

import json
from pathlib import Path

NODE_NAME = "switchyard-node"
HOST_IP = "10.250.0.1"  # host end of the veth pair: the API server listens here
NODE_IP = "10.250.0.2"  # node end: the kubelet's address, inside the node's namespace
LINK_PREFIX = 30
POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.0.0.0/24"  # the control plane's --service-cluster-ip-range
DNS_IP = "10.0.0.10"
BRIDGE = "cni0"
PAUSE_IMAGE = "switchyard.local/pause:1"
COREDNS_IMAGE = "switchyard.local/coredns:1"


def containerd(root: Path, runc: Path, cni_bin: Path) -> str:
    """containerd 2.x (config version 4), everything under `root`."""
    return f"""version = 4
root = '{root}/containerd/root'
state = '{root}/containerd/state'
imports = []

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{PAUSE_IMAGE}'

  [plugins.'io.containerd.cri.v1.runtime']
    disable_apparmor = true
    # root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj (pause asks -998)
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '{runc}'
          Root = '{root}/containerd/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{cni_bin}']
      conf_dir = '{root}/cni/net.d'
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'

  [plugins.'io.containerd.nri.v1.nri']
    disable = true

  [plugins.'io.containerd.internal.v1.opt']
    path = '{root}/containerd/opt'

  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = '{root}/containerd/image-verifier'

  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = '{root}/containerd/s'

  [plugins.'io.containerd.server.v1.grpc']
    address = '{root}/containerd/containerd.sock'

  [plugins.'io.containerd.server.v1.ttrpc']
    address = '{root}/containerd/containerd.sock.ttrpc'
"""


def cni(root: Path) -> str:
    """The bridge network: pods get the pod and service ranges as routes, no default
    route, and no masquerading (ipMasq false)."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "switchyard",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "isDefaultGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": f"{root}/cni/ipam",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
                        "routes": [{"dst": SERVICE_CIDR}],
                    },
                }
            ],
        },
        indent=2,
    )


def kubelet(root: Path, ca_cert: Path) -> str:
    # Anonymous + AlwaysAllow: the API server has no kubelet client certificate. The kubelet
    # listens only on NODE_IP, reachable from this machine and (guarded) not from pods.
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{root}/containerd/containerd.sock
address: {NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca_cert}
authorization:
  mode: AlwaysAllow
failSwapOn: false
podLogsDir: {root}/kubelet/pod-logs
volumePluginDir: {root}/kubelet/volume-plugins
resolvConf: ""
clusterDNS: ["{DNS_IP}"]
clusterDomain: cluster.local
staticPodPath: ""
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
maxPods: 30
serializeImagePulls: false
"""


def kube_proxy(kubeconfig: Path) -> str:
    # The conntrack zeros keep kube-proxy off the machine-wide nf_conntrack sysctls;
    # localhostNodePorts false keeps it off route_localnet.
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {kubeconfig}
hostnameOverride: {NODE_NAME}
clusterCIDR: {POD_CIDR}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["{NODE_IP}/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
"""


COREDNS_CONFIG = """.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
"""
"""CoreDNS answers for cluster.local only: it has no `forward`, so no name is ever looked
up beyond this machine."""


def coredns_manifests() -> list[dict[str, object]]:
    """Cluster DNS at DNS_IP: its RBAC, configuration, Deployment and Service."""
    labels = {"k8s-app": "kube-dns"}
    meta = {"name": "coredns", "namespace": "kube-system"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "switchyard-node:coredns"},
            "rules": [
                {"apiGroups": [""], "resources": ["services", "pods", "namespaces"],
                 "verbs": ["list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                 "verbs": ["list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "switchyard-node:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "switchyard-node:coredns"},
            "subjects": [{"kind": "ServiceAccount", **meta}],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
         "data": {"Corefile": COREDNS_CONFIG}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**meta, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "containers": [{
                            "name": "coredns",
                            "image": COREDNS_IMAGE,
                            "imagePullPolicy": "Never",
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
                                      {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                                               "periodSeconds": 1},
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                        }],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "clusterIP": DNS_IP,
                "selector": labels,
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                          {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
            },
        },
    ]
