"""The witness client treats a witness that holds more of our log, or a fork, as an alarm."""

from __future__ import annotations

import httpx
import pytest

from custodes.config import WitnessPeer
from custodes.federation.witnessing import WitnessRequester
from custodes.ledger.cosignature import CosignatureSigner
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.errors import IntegrityAlarm
from custodes.node import Node
from custodes.sdk import sign_decision
from tests.enrol import enrol

WITNESS = CosignatureSigner.generate("w.test/witness")
WITNESS_AGENT = EnvelopeSigner.from_seed(bytes(range(32)))


def _requester(node: Node, answer: httpx.Response) -> WitnessRequester:
    transport = httpx.MockTransport(lambda _request: answer)
    peer = WitnessPeer(url="http://127.0.0.1:9", vkey=WITNESS.vkey())
    return WitnessRequester(node, [peer], client=httpx.Client(transport=transport))


def _ask(node: Node, answer: httpx.Response, size: int) -> int:
    """Ask the one (scripted) witness to cosign our checkpoint of ``size``."""
    requester = _requester(node, answer)
    try:
        stored = node.store.checkpoint(size)
        assert stored is not None
        return requester.request_all(stored)
    finally:
        requester.stop()


def _newest(node: Node) -> int:
    node.log.integrate()
    stored = node.store.checkpoint()
    assert stored is not None
    return stored.size


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            httpx.Response(409, content=b"1000\n", headers={"content-type": "text/x.tlog.size"}),
            "rolled back",
            id="witness-holds-a-larger-size",
        ),
        pytest.param(
            httpx.Response(422, json={"error": {"code": "bad_proof", "message": "fork"}}),
            "fork",
            id="witness-says-fork",
        ),
    ],
)
def test_a_witness_ahead_of_us_or_on_a_fork_trips_the_alarm(
    node: Node, answer: httpx.Response, reason: str
) -> None:
    agent_id = enrol(node, WITNESS_AGENT)
    size = _newest(node)
    assert _ask(node, answer, size) == 0
    assert node.alarm.tripped
    assert reason in node.alarm.alarms()[0]["reason"]
    with pytest.raises(IntegrityAlarm):
        node.log.append([sign_decision(WITNESS_AGENT, agent_id, "act", "why").to_json()])


def test_a_witness_that_is_merely_behind_is_no_alarm(node: Node) -> None:
    size = _newest(node)
    answer = httpx.Response(500, json={"error": {"code": "internal_error", "message": "down"}})
    assert _ask(node, answer, size) == 0
    assert not node.alarm.tripped


def test_an_agent_still_appends_when_no_witness_complains(node: Node) -> None:
    agent_id = enrol(node, WITNESS_AGENT)
    node.log.append([sign_decision(WITNESS_AGENT, agent_id, "act", "why").to_json()])
    assert not node.alarm.tripped
