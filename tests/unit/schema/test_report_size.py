"""switchyard_schema/report.py at scale: 10,000 endpoints fit a ConfigMap with room to spare.

A ConfigMap holds at most 1 MiB. The report groups endpoints by namespace, so an endpoint
costs its name and its 16-digit hash; the flat `namespace/name` keys of the first shape
cost the namespace again on every line, and are still read.
"""

from __future__ import annotations

import json

from switchyard_schema import report as shape

CONFIGMAP_LIMIT = 1024 * 1024


def _report(count: int, namespaces: int = 1) -> shape.Report:
    endpoints = {f"platform-team-{i % namespaces:02d}-production/"
                 f"chat-completions-{i:05d}-primary-route-eu1": f"{i:016x}"
                 for i in range(count)}
    return shape.Report("gateway-7f9c8d6b5-x2x4q", 1.7e9, 5.0, endpoints, {})


def test_ten_thousand_endpoints_with_forty_character_names_take_under_sixty_percent() -> None:
    report = _report(10_000)
    assert len(next(iter(report.endpoints)).partition("/")[2]) == 40
    text = shape.encode(report)
    assert len(text.encode()) < 0.6 * CONFIGMAP_LIMIT, len(text)
    assert shape.decode(text) == report


def test_namespaces_are_written_once_each() -> None:
    text = shape.encode(_report(1_000, namespaces=10))
    assert text.count("platform-team-03-production") == 1
    assert shape.decode(text) == _report(1_000, namespaces=10)


def test_the_flat_shape_of_earlier_replicas_is_still_read() -> None:
    report = _report(3)
    flat = json.dumps({"replica": report.replica, "heartbeat": report.heartbeat,
                       "interval": report.interval, "endpoints": dict(report.endpoints),
                       "cooling": {}})
    assert shape.decode(flat) == report
