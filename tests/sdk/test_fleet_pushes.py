"""Selector orders as the SDK reads them: the node's view of one order for each stream
(``stream_view``), and ``verify_fleet_push``, the parser of a fleet stream's pushes."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from custodes.killswitch.broadcast import OrderBroadcaster, PushSigner, Subscription
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.guard import GuardState
from custodes.sdk.pushes import UnverifiedPush, stream_nonce, verify_fleet_push, verify_push

NODE = EnvelopeSigner.generate()
ACME = [f"urn:custodes:gb:agent:acme-{i}" for i in range(3)]
GLOBEX = "urn:custodes:gb:agent:globex-0"
COVERED = [(a, "operator:acme") for a in ACME] + [(GLOBEX, "operator:globex")]


def selector_event() -> dict[str, Any]:
    order = {
        "v": 1,
        "op": "suspend",
        "order_id": "s" * 12,
        "agent_id": None,
        "selector": {"sector": "finance"},
        "scope": "global",
        "territory": None,
        "reason": "model found vulnerable",
        "actor": "regulator:gb",
        "at": "2026-01-01T00:00:00Z",
        "lifts": None,
    }
    return {"index": 12, "order": order, "envelope": {}}


def _views(**subscribe: Any) -> list[dict[str, Any]]:
    """What one subscriber's queue holds after the selector order is published."""

    async def run() -> list[dict[str, Any]]:
        broadcaster = OrderBroadcaster()
        sub: Subscription = broadcaster.subscribe(**subscribe)
        broadcaster.publish_covering(COVERED, selector_event())
        await asyncio.sleep(0)  # the hand-off is call_soon_threadsafe: one loop turn
        found = []
        while not sub.queue.empty():
            item = sub.queue.get_nowait()
            assert item is not None
            found.append(item)
        return found

    return asyncio.run(run())


def _signed(view: dict[str, Any], stream: str) -> str:
    return orjson.dumps(PushSigner(NODE, stream).sign(view)).decode()


def test_a_one_agent_stream_gets_the_order_naming_its_agent() -> None:
    (view,) = _views(agent_id=ACME[1])
    stream = stream_nonce()
    pushed = verify_push(
        _signed(view, stream),
        node_public_key=NODE.public_key,
        agent_id=ACME[1],
        stream=stream,
        after_seq=0,
    )
    state = GuardState(ACME[1])
    assert state.on_order(pushed.order, pushed.index) is not None
    halted = state.halted(0.0)
    assert halted is not None
    assert halted.reason == "kill_order"


def test_streams_outside_the_order_get_nothing() -> None:
    assert _views(agent_id="urn:custodes:gb:agent:elsewhere") == []
    assert _views(agent_id=None, operator="operator:initech") == []


def test_a_fleet_stream_gets_one_push_listing_its_covered_agents() -> None:
    (view,) = _views(agent_id=None, operator="operator:acme")
    stream = stream_nonce()
    pushed = verify_fleet_push(
        _signed(view, stream), node_public_key=NODE.public_key, stream=stream, after_seq=0
    )
    assert pushed.agents == tuple(ACME)
    assert pushed.for_agent(ACME[0])["agent_id"] == ACME[0]
    (everything,) = _views(agent_id=None)
    assert everything["agents"] == [*ACME, GLOBEX]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"signer": EnvelopeSigner.generate()}, "not signed by the home node"),
        ({"stream": "another"}, "another stream"),
        ({"after_seq": 1}, "a replay"),
        ({"agents": None}, "lists no covered agents"),
    ],
)
def test_a_fleet_push_that_does_not_check_out_is_unverified(
    change: dict[str, Any], problem: str
) -> None:
    (view,) = _views(agent_id=None, operator="operator:acme")
    if "agents" in change:
        view = {k: v for k, v in view.items() if k != "agents"}
    stream = stream_nonce()
    signer = change.get("signer", NODE)
    data = orjson.dumps(PushSigner(signer, change.get("stream", stream)).sign(view)).decode()
    with pytest.raises(UnverifiedPush, match=problem):
        verify_fleet_push(
            data,
            node_public_key=NODE.public_key,
            stream=stream,
            after_seq=change.get("after_seq", 0),
        )
