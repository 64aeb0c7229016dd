"""The connect-time address policy: link-local and cloud-metadata addresses are refused,
in every spelling; loopback and private ranges (in-cluster providers, tests) are not."""

from __future__ import annotations

import pytest

from switchyard_gateway.transport.addresses import refused


@pytest.mark.parametrize("address", [
    "169.254.169.254",          # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    "169.254.170.2",            # AWS ECS task metadata
    "169.254.0.23",             # Tencent Cloud
    "fe80::1", "fe80::1%eth0",  # IPv6 link-local, with a zone
    "fd00:ec2::254",            # AWS IMDS over IPv6
    "100.100.100.200",          # Alibaba Cloud
    "192.0.0.192",              # Oracle Cloud (legacy)
    "168.63.129.16",            # Azure WireServer
    "::ffff:169.254.169.254",   # IPv4-mapped
    "64:ff9b::a9fe:a9fe",       # NAT64 of 169.254.169.254
])
def test_metadata_and_link_local_addresses_are_refused(address: str) -> None:
    assert refused(address)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "::1", "10.0.0.5", "192.168.1.10", "172.16.0.1", "100.64.0.1",
    "8.8.8.8", "2001:db8::1", "fd00:ec2::253", "metadata.google.internal",
])
def test_other_addresses_are_allowed(address: str) -> None:
    # names are not judged here: the pool checks what they resolve to
    assert not refused(address)
