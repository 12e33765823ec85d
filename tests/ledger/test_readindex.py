"""Read indexes: what a decision's row says, and catching up from the watermark.

The index must say what the log says: every integrated decision exactly once (however
many processes catch up at the same time), nothing past the tree size, times read the
way the log accepted them, and a stored entry that no longer parses left out without
stopping the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import func, select, update

from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.payloads import DecisionRecord
from custodes.ledger.readindex import DECISIONS, ReadIndex, decision_index, decision_row, micros
from custodes.ledger.store import entries
from custodes.node import Node
from custodes.sdk.decisions import sign_decision
from custodes.store.db import open_engine, read_tx, write_tx
from tests.enrol import enrol

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC), 1_000_005),
        (datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), -1_000_000),
        (datetime(1970, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))), 0),
        (datetime(1970, 1, 1, 0, 0, 2), 2_000_000),  # no offset: UTC
    ],
)
def test_micros_counts_from_the_epoch_in_utc(instant: datetime, expected: int) -> None:
    assert micros(instant) == expected


@pytest.mark.parametrize(
    "decided_at",
    ["2026-03-01T13:00:00+01:00", "2026-03-01T12:00:00Z", "2026-03-01T12:00:00", 1772366400],
)
def test_a_decisions_row_reads_its_time_as_the_log_accepted_it(decided_at: object) -> None:
    payload = {"agent": "a", "action": "x", "rationale": "y", "decided_at": decided_at}
    accepted = DecisionRecord.model_validate(payload).decided_at
    row = decision_row(7, orjson.dumps(payload))
    assert micros(accepted) == micros(T0)
    assert row == {"idx": 7, "agent_id": "a", "decided_at": micros(T0)}


@pytest.fixture
def quiet(settings: Settings) -> Iterator[Node]:
    """A node that sequences but neither integrates nor indexes unless the test says so."""
    node = Node(settings)
    node.log.sequencer.start()
    try:
        yield node
    finally:
        node.close()


def _decide(node: Node, key: EnvelopeSigner, agent: str, count: int) -> list[int]:
    envelopes = [
        sign_decision(key, agent, f"a{n}", "r", decided_at=T0 + timedelta(seconds=n)).to_json()
        for n in range(count)
    ]
    indices = node.log.append(envelopes)
    node.log.integrate()
    return indices


def _indexed(node: Node) -> list[int]:
    with read_tx(node.engine) as conn:
        return list(conn.execute(select(decision_index.c.idx).order_by("idx")).scalars())


def test_catch_up_indexes_integrated_decisions_only_and_once(
    quiet: Node, agent: EnvelopeSigner
) -> None:
    agent_id = enrol(quiet, agent)
    indexed = _decide(quiet, agent, agent_id, 5)
    pending = quiet.log.append([sign_decision(agent, agent_id, "later", "r").to_json()])
    assert quiet.read_index.catch_up("decisions") == quiet.store.tree_size()[0]
    assert _indexed(quiet) == indexed  # the enrolment entries are not decisions
    quiet.read_index.catch_up("decisions")
    assert _indexed(quiet) == indexed  # nothing twice
    quiet.log.integrate()
    quiet.read_index.catch_up("decisions")
    assert _indexed(quiet) == indexed + pending


def test_a_budget_stops_short_and_the_next_catch_up_goes_on(
    quiet: Node, agent: EnvelopeSigner
) -> None:
    agent_id = enrol(quiet, agent)
    indexed = _decide(quiet, agent, agent_id, 30)
    assert quiet.read_index.catch_up("decisions", budget=10) == 10
    assert quiet.read_index.covered("decisions") == 10
    assert _indexed(quiet) == [i for i in indexed if i < 10]
    quiet.read_index.catch_up("decisions")
    assert _indexed(quiet) == indexed


def test_processes_catching_up_at_once_index_each_decision_once(
    quiet: Node, agent: EnvelopeSigner, settings: Settings
) -> None:
    agent_id = enrol(quiet, agent)
    indexed = _decide(quiet, agent, agent_id, 300)
    engines = [open_engine(settings.db_url) for _ in range(3)]
    failures: list[BaseException] = []

    def run(index: ReadIndex) -> None:
        try:
            index.catch_up("decisions")
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(ReadIndex(e, [DECISIONS]),)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines:
        engine.dispose()
    assert failures == []
    assert _indexed(quiet) == indexed


def test_an_entry_that_no_longer_parses_is_left_out_and_the_rest_indexed(
    quiet: Node, agent: EnvelopeSigner
) -> None:
    agent_id = enrol(quiet, agent)
    indexed = _decide(quiet, agent, agent_id, 3)
    with write_tx(quiet.engine) as conn:
        conn.execute(update(entries).where(entries.c.idx == indexed[1]).values(data=b"{garbage"))
    assert quiet.read_index.catch_up("decisions") == quiet.store.tree_size()[0]
    assert _indexed(quiet) == [indexed[0], indexed[2]]
    with read_tx(quiet.engine) as conn:
        assert conn.execute(select(func.count()).select_from(decision_index)).scalar_one() == 2
