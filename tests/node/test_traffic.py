"""In-cluster calls through Services on a real node: examples/01-ab-split.yaml with its
targets pointed at fake providers running as pods, called by a client pod with the OpenAI
SDK at http://switchyard-gateway.switchyard/v1 (cluster DNS); the split, then the ordered
fallbacks when the chosen targets break."""

from __future__ import annotations

from switchyard_testing.node import Node
from tests.node import support
from tests.node.support import EXAMPLE, MODEL, applied, example


def test_example_split_through_the_gateway_service_by_dns_name(node: Node, team: None) -> None:
    # The example file itself, as a user applies it; then its targets at the fakes.
    done = node.kubectl("apply", "--dry-run=server", "-f", str(EXAMPLE))
    assert "gatewayendpoint.switchyard.dev/chat" in done.stdout
    applied(node, example())
    support.wait_for(lambda: bool(support.run_client(node, "count", "1", MODEL)
                                  .get("served")), 60, "the gateway to serve team-a/chat")
    result = support.run_client(node, "count", "60", MODEL)
    assert not result.get("failed"), result
    served = result["served"]
    assert set(served) == {"gpt5", "claude"}, served
    assert min(served.values()) >= 15, served  # 50/50 of 60: far from either edge


def test_fallbacks_in_order_when_targets_break(node: Node, team: None) -> None:
    applied(node, example(broken=("gpt-5", "claude-sonnet-4-5")))
    support.wait_for(lambda: set(support.run_client(node, "count", "4", MODEL)
                                 .get("served", {})) == {"openai-gpt-5-mini"}, 60,
                     "the first fallback to take over")
    result = support.run_client(node, "count", "20", MODEL)
    assert result.get("served") == {"openai-gpt-5-mini": 20}, result
    applied(node, example(broken=("gpt-5", "claude-sonnet-4-5", "gpt-5-mini")))
    support.wait_for(lambda: set(support.run_client(node, "count", "4", MODEL)
                                 .get("served", {})) == {"anthropic-claude-haiku-4-5"}, 60,
                     "the second fallback to take over")
    applied(node, example())
