"""The demo's pure parts: the overlay of the example, the stats it prints, the views."""

from __future__ import annotations

import io

from switchyard_cli.demo import overlay, scenario, stats, view
from switchyard_cli.demo.traffic import Sample
from switchyard_schema import validate_manifest

EXAMPLE = overlay.load_example()
TARGETS = overlay.targets(EXAMPLE)
URLS = {t.name: f"http://127.0.0.1:{9000 + i}" for i, t in enumerate(TARGETS)}


def test_targets_follow_routing_order_with_crd_default_names() -> None:
    assert [(t.name, t.role, t.position, t.weight) for t in TARGETS] == [
        ("gpt5", "split", 1, 50), ("claude", "split", 2, 50),
        ("openai-gpt-5-mini", "fallback", 1, None),
        ("anthropic-claude-haiku-4-5", "fallback", 2, None)]


def test_overlay_points_every_target_at_its_fake_and_leaves_the_example_alone() -> None:
    doc = overlay.overlay(EXAMPLE, URLS, {"gpt5": 90, "claude": 10})
    spec = doc["spec"]
    assert [t["baseUrl"] for t in [*spec["trafficSplit"], *spec["fallbacks"]]] == list(
        URLS.values())
    assert [t["weight"] for t in spec["trafficSplit"]] == [90, 10]
    assert spec["policy"]["cooldown"] == overlay.DEMO_COOLDOWN
    assert "baseUrl" not in EXAMPLE["spec"]["trafficSplit"][0]  # a copy, not an edit
    assert validate_manifest(doc) == []  # what the API server will accept


def test_secrets_are_labelled_and_hold_fake_keys_only() -> None:
    found = overlay.secrets(EXAMPLE)
    assert [s["metadata"]["name"] for s in found] == ["anthropic-key", "openai-key"]
    for secret in found:
        assert secret["metadata"]["labels"] == {"switchyard.dev/credential": "true"}
        assert secret["metadata"]["namespace"] == "team-a"
        assert all("not-a-real-key" in v for v in secret["stringData"].values())


def _samples(served: dict[str, int], errors: int = 0) -> list[Sample]:
    out = [Sample(float(i), name, 200, 0.001 * (i + 1), 1)
           for name, n in served.items() for i in range(n)]
    return out + [Sample(0.0, "gpt5", 502, 0.5, 3) for _ in range(errors)]


def test_stats_shares_fallbacks_and_percentiles() -> None:
    result = stats.compute(_samples({"claude": 50, "openai-gpt-5-mini": 50}, errors=1),
                           TARGETS, {"gpt5": 50, "claude": 50}, 10.0)
    shares = {r.info.name: r.share for r in result.rows}
    assert shares == {"gpt5": 0.0, "claude": 0.5, "openai-gpt-5-mini": 0.5,
                      "anthropic-claude-haiku-4-5": 0.0}
    assert result.fallbacks == 50 and result.errors == 1 and result.requests == 101
    assert result.per_second == 10.1
    assert stats.percentile([1, 2, 3, 4], 0.5) == 2 and stats.percentile([], 0.5) is None


def test_summary_line_and_views_render() -> None:
    steps = scenario.phases(TARGETS)
    assert [p.key for p in steps] == ["split", "primary-down", "fallback-1-down", "reweight"]
    assert steps[-1].weights == {"gpt5": 90, "claude": 10}
    result = stats.compute(_samples({"gpt5": 9, "claude": 1}), TARGETS, steps[-1].weights, 1.0)
    line = scenario.summary_line(steps[-1], result)
    assert line.startswith("summary phase=reweight weights=gpt5:90,claude:10 ")
    assert "shares=gpt5:0.900,claude:0.100," in line
    screen = view.Screen(model="team-a/chat", phase="4/4 reweight: x", elapsed=3.0,
                         window_seconds=5.0, stats=result, hints=["curl ..."])
    plain, term = io.StringIO(), io.StringIO()
    view.PlainView(plain).show(screen)
    assert "gpt5=0.90 claude=0.10" in plain.getvalue()
    view.TerminalView(term).show(screen)
    assert "gpt5" in term.getvalue() and "┃" in term.getvalue() and "curl ..." in term.getvalue()
    assert view.share_bar(0.5, 50, width=10) == "████┃░░░░░"
