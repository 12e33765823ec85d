"""The decision recorder: spooled to disk first, delivered in order, exactly once at the
node, through outages, restarts and torn writes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from custodes.client import Client
from custodes.demo.fakes import FakeClock, FakeNode
from custodes.errors import BadRequest
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.commitments import OpenedEntry, parse_opening
from custodes.ledger.dsse import Envelope, EnvelopeSigner, parse_envelope
from custodes.sdk.decisions import sign_decision
from custodes.sdk.recorder import DecisionRecorder
from custodes.sdk.spool import ACKED_FILE, SPOOL_FILE, SpoolError
from tests.sdk.support import AGENT, eventually, make_node


@pytest.fixture
def signer() -> EnvelopeSigner:
    return EnvelopeSigner.generate()


@pytest.fixture
def node(signer: EnvelopeSigner) -> FakeNode:
    return make_node(FakeClock(), signer)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def open_recorder(
    node: FakeNode, signer: EnvelopeSigner, spool: Path
) -> Iterator[Callable[..., DecisionRecorder]]:
    opened: list[DecisionRecorder] = []

    def build(**kw: Any) -> DecisionRecorder:
        kw = {"flush_interval": 0.01, "retry_initial": 0.01, "retry_max": 0.05} | kw
        client = Client(node.url, http=node.client())
        recorder = DecisionRecorder(client, AGENT, signer, spool, **kw)
        opened.append(recorder)
        return recorder

    yield build
    for recorder in opened:
        recorder.close()


def keys_at(node: FakeNode) -> list[str | None]:
    return [d.idempotency_key for d in node.decisions()]


def test_a_decision_is_on_disk_before_record_returns(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode, spool: Path
) -> None:
    node.set_reachable(False)
    key = open_recorder().record("buy", "cheap", ["urn:custodes:fr:agent:seller"], "GB")
    lines = (spool / SPOOL_FILE).read_bytes().splitlines()
    assert [orjson.loads(line)["key"] for line in lines] == [key]


def test_decisions_reach_the_node_in_order_with_their_fields(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode
) -> None:
    recorder = open_recorder(batch_size=7)
    digest = "sha256:" + "ab" * 32
    keys = [recorder.record("buy", f"reason {i}", inputs_digest=digest) for i in range(30)]
    assert recorder.flush(5)
    assert keys_at(node) == keys
    first = node.decisions()[0]
    assert (first.agent, first.action, first.rationale, first.inputs_digest) == (
        AGENT,
        "buy",
        "reason 0",
        digest,
    )
    assert recorder.pending() == 0


def test_decisions_recorded_while_the_node_is_unreachable_arrive_once_it_returns(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode
) -> None:
    node.set_reachable(False)
    recorder = open_recorder(batch_size=4)
    keys = [recorder.record("sell", f"r{i}") for i in range(10)]
    assert not recorder.flush(0.2)
    assert recorder.pending() == 10
    assert recorder.last_error is not None
    node.set_reachable(True)
    assert recorder.flush(5)
    assert keys_at(node) == keys
    assert node.received == 10  # each sent once: nothing was acknowledged twice


def test_an_overloaded_node_is_retried_after_retry_after(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode
) -> None:
    node.unavailable, node.retry_after = 503, 0
    recorder = open_recorder()
    keys = [recorder.record("hold", "wait") for _ in range(3)]
    assert not recorder.flush(0.2)
    assert recorder.last_error is not None
    assert "overloaded" in recorder.last_error
    node.unavailable = None
    assert recorder.flush(5)
    assert keys_at(node) == keys


def test_a_new_recorder_delivers_what_a_closed_one_left(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode
) -> None:
    node.set_reachable(False)
    first = open_recorder()
    keys = [first.record("buy", f"r{i}") for i in range(5)]
    first.close()  # no flush: as if the process died
    node.set_reachable(True)
    second = open_recorder()
    assert second.flush(5)
    more = second.record("buy", "after the restart")
    assert second.flush(5)
    assert keys_at(node) == [*keys, more]
    assert node.received == 6


def test_answers_lost_mid_flight_cause_resends_but_no_duplicates(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode
) -> None:
    node.lose_responses = 10**6  # the node stores each batch; its answer never arrives
    first = open_recorder(batch_size=2)
    keys = [first.record("buy", f"r{i}") for i in range(5)]
    eventually(lambda: node.received >= 10)  # sent, and sent again
    first.close()
    node.lose_responses = 0
    second = open_recorder(batch_size=2)
    assert second.flush(5)
    assert keys_at(node) == keys  # each stored once, in order
    assert len(node.log) == 5


def test_nothing_acknowledged_is_sent_again_after_a_restart(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode
) -> None:
    first = open_recorder()
    for i in range(3):
        first.record("buy", f"r{i}")
    assert first.flush(5)
    first.close()
    second = open_recorder()
    assert second.flush(5)
    assert node.received == 3


def test_a_torn_trailing_line_is_skipped_with_a_warning(
    open_recorder: Callable[..., DecisionRecorder],
    node: FakeNode,
    spool: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node.set_reachable(False)
    first = open_recorder()
    keys = [first.record("buy", f"r{i}") for i in range(3)]
    first.close()
    with (spool / SPOOL_FILE).open("ab") as handle:
        handle.write(b'{"envelope":{"payload":"eyJ2Ijox')  # the crash cut this write short
    node.set_reachable(True)
    with caplog.at_level(logging.WARNING, logger="custodes.sdk.spool"):
        second = open_recorder()
    assert "unreadable" in caplog.text
    keys.append(second.record("buy", "written after the torn line"))
    assert second.flush(5)
    assert keys_at(node) == keys


def test_a_torn_ack_line_means_a_resend_the_node_deduplicates(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode, spool: Path
) -> None:
    node.set_reachable(False)
    first = open_recorder()
    keys = [first.record("buy", f"r{i}") for i in range(3)]
    first.close()
    node.set_reachable(True)
    # The node got them, but the ack line was torn by a crash.
    Client(node.url, http=node.client()).append(_spooled(spool))
    (spool / ACKED_FILE).write_bytes(b'{"v":1,"keys":["')
    second = open_recorder()
    assert second.flush(5)
    assert keys_at(node) == keys
    assert node.received == 6


def _spooled(spool: Path) -> list[Envelope | OpenedEntry]:
    lines = [orjson.loads(line) for line in (spool / SPOOL_FILE).read_bytes().splitlines()]
    return [
        OpenedEntry(parse_envelope(line["envelope"]), parse_opening(line["opening"]))
        for line in lines
    ]


def test_decisions_are_spooled_and_sent_as_commitments_with_their_openings(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode, spool: Path
) -> None:
    node.set_reachable(False)
    recorder = open_recorder()
    recorder.record("buy", "a private reason", ["urn:custodes:fr:agent:seller"])
    (line,) = [orjson.loads(raw) for raw in (spool / SPOOL_FILE).read_bytes().splitlines()]
    logged = orjson.loads(parse_envelope(line["envelope"]).payload)
    assert (line["v"], logged["v"], logged["kind"]) == (2, 2, "decision")
    assert "a private reason" not in str(logged)
    assert line["opening"]["record"]["rationale"] == "a private reason"
    node.set_reachable(True)
    assert recorder.flush(5)
    assert [d.rationale for d in node.decisions()] == ["a private reason"]
    assert orjson.loads(node.log[-1].payload)["commitment"] == logged["commitment"]


def test_a_spool_written_before_commitments_still_delivers(
    open_recorder: Callable[..., DecisionRecorder],
    node: FakeNode,
    signer: EnvelopeSigner,
    spool: Path,
) -> None:
    spool.mkdir()
    plain = sign_decision(signer, AGENT, "sell", "an old spool", idempotency_key="old-1")
    line = {"v": 1, "key": "old-1", "envelope": plain.to_json()}
    (spool / SPOOL_FILE).write_bytes(canonical_dumps(line) + b"\n")
    assert open_recorder().flush(5)
    assert [(d.action, d.idempotency_key) for d in node.decisions()] == [("sell", "old-1")]
    assert orjson.loads(node.log[-1].payload)["v"] == 1


def test_a_revoked_agent_still_delivers_its_halt(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode
) -> None:
    node.revoke(AGENT)
    recorder = open_recorder()
    key = recorder.record("halt", "revoked by the home regulator")
    assert recorder.flush(10)
    assert keys_at(node) == [key]


def test_a_decision_refused_for_good_is_set_aside_and_the_rest_delivered(
    open_recorder: Callable[..., DecisionRecorder], node: FakeNode, spool: Path
) -> None:
    node.revoke(AGENT)
    recorder = open_recorder(batch_size=10)
    refused = [recorder.record("buy", "before the order reached me") for _ in range(2)]
    halt = recorder.record("halt", "revoked")
    assert recorder.flush(10)
    assert recorder.pending() == 0
    assert keys_at(node) == [halt]
    rejected = recorder.rejected()
    assert [r["key"] for r in rejected] == refused
    assert all("agent_revoked" in r["reason"] for r in rejected)
    recorder.close()
    again = open_recorder()  # a restart never resends what was set aside
    assert again.flush(10)
    assert keys_at(node) == [halt]
    assert (spool / "rejected.jsonl").exists()


def test_an_invalid_decision_is_refused_before_it_is_spooled(
    open_recorder: Callable[..., DecisionRecorder],
) -> None:
    recorder = open_recorder()
    with pytest.raises(BadRequest) as caught:
        recorder.record("buy", "r", jurisdiction="X")
    assert caught.value.code == "invalid_decision"
    assert recorder.pending() == 0


def test_one_recorder_per_spool_directory(
    open_recorder: Callable[..., DecisionRecorder],
) -> None:
    open_recorder()
    with pytest.raises(SpoolError) as caught:
        open_recorder()
    assert caught.value.code == "spool_locked"


def test_a_closed_recorder_records_nothing(
    open_recorder: Callable[..., DecisionRecorder],
) -> None:
    recorder = open_recorder()
    recorder.close()
    with pytest.raises(SpoolError):
        recorder.record("buy", "late")
