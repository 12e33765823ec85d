"""The CLI says where a foreign agent's order went: the home's log, or the outbox."""

from __future__ import annotations

from custodes.cli.kill import outcome


def test_a_delivered_forward_names_the_home_node() -> None:
    answer = {
        "index": 12,
        "order_id": "o1",
        "agent_id": "urn:custodes:gb:agent:a",
        "status": "active",
        "forwarded_to": "GB",
        "state": "delivered",
    }
    said = outcome("suspend", answer, "FR")
    assert said.startswith("suspended urn:custodes:gb:agent:a in FR: order o1 at log index 12")
    assert said.endswith("(at the GB node, the agent's home)")


def test_a_queued_forward_gives_its_message_id() -> None:
    answer = {"message_id": "m-1", "forwarded_to": "GB", "state": "queued", "order_id": "o1"}
    said = outcome("suspend", answer, "FR")
    assert "GB node" in said
    assert "/api/v1/federation/outbox/m-1" in said
