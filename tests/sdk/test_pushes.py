"""verify_push is the parser of pushed kill orders: only an event the home node
countersigned for this stream, this agent and a sequence number above the last one gets
through; LogThrottle keeps a flood of forged events out of the logs."""

from __future__ import annotations

import base64
import logging
from typing import Any

import orjson
import pytest

from custodes.demo.fakes import FakeClock
from custodes.killswitch.broadcast import ORDER_PUSH_TYPE as NODE_PUSH_TYPE
from custodes.killswitch.broadcast import PushSigner
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.sdk.pushes import (
    ORDER_PUSH_TYPE,
    LogThrottle,
    UnverifiedPush,
    stream_nonce,
    verify_push,
)
from tests.sdk.support import AGENT

NODE = EnvelopeSigner.generate()
OTHER = "urn:custodes:gb:agent:other"
STREAM = stream_nonce()


def order(agent_id: str = AGENT, op: str = "suspend") -> dict[str, Any]:
    return {
        "v": 1,
        "op": op,
        "order_id": "o" * 12,
        "agent_id": agent_id,
        "scope": "global",
        "reason": "test",
        "actor": "regulator:gb",
        "at": "2026-01-01T00:00:00Z",
    }


def event(
    *,
    signer: EnvelopeSigner | None = NODE,
    payload_type: str = ORDER_PUSH_TYPE,
    **changes: Any,
) -> str:
    """An ``order`` event's data, countersigned by ``signer`` (unsigned when None)."""
    payload = {
        "v": 1,
        "event": "order",
        "stream": STREAM,
        "seq": 1,
        "at": 1_750_000_000,
        "agent_id": AGENT,
        "index": 7,
        "order": order(),
    } | changes
    data: dict[str, Any] = {"index": payload["index"], "order": payload["order"]}
    if signer is not None:
        push = sign_envelope(payload_type, canonical_dumps(payload), [signer])
        data["push"] = push.to_json()
    return orjson.dumps(data).decode()


def verify(data: str, after_seq: int = 0) -> Any:
    return verify_push(
        data, node_public_key=NODE.public_key, agent_id=AGENT, stream=STREAM, after_seq=after_seq
    )


def test_a_push_the_node_countersigned_for_this_stream_verifies() -> None:
    pushed = verify(event(seq=3, index=41), after_seq=2)
    assert (pushed.index, pushed.seq) == (41, 3)
    assert pushed.order == order()


def test_what_the_node_signs_is_what_the_guard_verifies() -> None:
    assert NODE_PUSH_TYPE == ORDER_PUSH_TYPE
    signer = PushSigner(NODE, STREAM, clock=lambda: 1_750_000_000.0)
    first = signer.sign({"index": 5, "order": order(), "envelope": {}})
    second = signer.sign({"index": 9, "order": order(op="revoke"), "envelope": {}})
    assert verify(orjson.dumps(first).decode()).seq == 1
    pushed = verify(orjson.dumps(second).decode(), after_seq=1)
    assert (pushed.index, pushed.seq, pushed.order["op"]) == (9, 2, "revoke")


def _tampered() -> str:
    data = orjson.loads(event())
    payload = orjson.loads(base64.b64decode(data["push"]["payload"]))
    payload["index"] = 10**9
    data["push"]["payload"] = base64.b64encode(canonical_dumps(payload)).decode()
    return orjson.dumps(data).decode()


REFUSED = {
    "unsigned": (event(signer=None), 0),
    "not JSON": ("{", 0),
    "signed by another key": (event(signer=EnvelopeSigner.generate()), 0),
    "tampered after signing": (_tampered(), 0),
    "another payload type": (event(payload_type="application/vnd.custodes.lease+json"), 0),
    "signed for another stream (replayed from an earlier connection)": (
        event(stream=stream_nonce()),
        0,
    ),
    "replayed within the stream": (event(seq=4), 4),
    "re-ordered within the stream": (event(seq=3), 4),
    "signed for another agent": (event(agent_id=OTHER, order=order(OTHER)), 0),
    "order for another agent": (event(order=order(OTHER)), 0),
    "another event type": (event(event="lease"), 0),
    "negative index": (event(index=-1), 0),
    "index not an integer": (event(index="7"), 0),
    "version 2": (event(v=2), 0),
}


@pytest.mark.parametrize(("data", "after_seq"), REFUSED.values(), ids=REFUSED.keys())
def test_an_event_the_node_did_not_countersign_for_this_stream_is_refused(
    data: str, after_seq: int
) -> None:
    with pytest.raises(UnverifiedPush) as caught:
        verify(data, after_seq)
    assert (caught.value.code, caught.value.status) == ("unverified_push", 403)


def test_a_flood_of_warnings_is_logged_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    throttle = LogThrottle(logging.getLogger("custodes.test.throttle"), every=3600)
    with caplog.at_level(logging.WARNING, logger="custodes.test.throttle"):
        for n in range(1_000):
            throttle.warning("forged event %d", n)
    assert [r.getMessage() for r in caplog.records] == ["forged event 0"]


def test_the_next_warning_after_the_period_counts_the_ones_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(0)
    throttle = LogThrottle(logging.getLogger("custodes.test.throttle"), every=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="custodes.test.throttle"):
        for message in ("a", "b", "c"):
            throttle.warning(message)
            clock.advance(1)
        clock.advance(60)
        throttle.warning("d")
    assert [r.getMessage() for r in caplog.records] == [
        "a",
        "d (2 more since the last such warning)",
    ]
