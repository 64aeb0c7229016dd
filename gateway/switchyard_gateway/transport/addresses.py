"""The connect-time address policy: addresses the gateway never opens a connection to.

A tenant writes the `baseUrl`, so without this policy a target could point the gateway
at the node's cloud metadata service and read the instance's credentials back through an
error message. The check runs on the address actually connected to, after DNS (`pool.py`
filters each host's resolved addresses before Happy Eyeballs), so a name that resolves
elsewhere between two requests (DNS rebinding) is checked again on every new connection.
Loopback and private ranges stay allowed: in-cluster providers (vLLM, a sidecar) live
there, and the tests and the demo use loopback. Pure functions, no I/O.
"""

from __future__ import annotations

import functools
import ipaddress

#: Link-local ranges (every cloud's metadata service sits in 169.254.0.0/16: AWS, GCP,
#: Azure IMDS, OpenStack, DigitalOcean, Oracle, Tencent's 169.254.0.23) and the metadata
#: and host-agent addresses outside them.
_REFUSED = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16",      # IPv4 link-local, all cloud metadata services at .169.254
    "fe80::/10",           # IPv6 link-local
    "fd00:ec2::254/128",   # AWS IMDS over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "192.0.0.192/32",      # Oracle Cloud legacy metadata
    "168.63.129.16/32",    # Azure WireServer (host agent, VM extension settings)
))
#: RFC 6052 NAT64 prefix: 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a NAT64.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@functools.lru_cache(maxsize=1024)
def refused(address: str) -> bool:
    """True when the gateway must not connect to `address` (an IP literal; a zone id
    such as `%eth0` is ignored). A string that is no IP address is not refused here."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return any(ip in net for net in _REFUSED)
