"""The log audit: signatures under the keys in force at each index, leaf hashes, and
the tree against every signed checkpoint; ``registry rebuild`` names a corrupt entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, update

from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.errors import CorruptEntry, IntegrityAlarm
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.store import SequencedEntry, entries, signers
from custodes.node import Node
from custodes.registry.audit import LogAuditor
from custodes.registry.rebuild import rebuild
from custodes.sdk import sign_decision
from custodes.store.db import open_engine, write_tx
from tests.enrol import enrol

ATTACKER = EnvelopeSigner.from_seed(b"x" * 32)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    yield engine
    engine.dispose()


def _auditor(node: Node, target: Engine) -> LogAuditor:
    return LogAuditor(node.store, target, node.log_signer.verifier(), node.entry_signer.public_key)


def _decide(node: Node, agent: EnvelopeSigner, agent_id: str, count: int) -> None:
    node.log.append(
        [sign_decision(agent, agent_id, f"act {i}", "why").to_json() for i in range(count)]
    )
    node.log.integrate()


def _smuggle(node: Node, agent_id: str) -> int:
    """What a database writer without the keys can do: add their own key to the live
    signer table and sequence a decision signed with it, past every API check."""
    with write_tx(node.engine) as conn:
        conn.execute(
            insert(signers).values(
                keyid=ATTACKER.keyid,
                name=agent_id,
                public_key=ATTACKER.public_key,
                status="active",
                entry_index=0,
            )
        )
    data = sign_decision(ATTACKER, agent_id, "wire the funds", "forged").to_bytes()
    [index] = node.store.sequence([SequencedEntry(data, leaf_hash(data), DECISION_TYPE)])
    node.log.integrate()
    return index


def test_an_honest_log_audits_clean_and_then_incrementally(
    node: Node, agent: EnvelopeSigner, scratch: Engine
) -> None:
    agent_id = enrol(node, agent)
    _decide(node, agent, agent_id, 50)
    first = _auditor(node, scratch).run()
    size, _ = node.store.tree_size()
    assert (first.audited, first.entries) == (size, size)
    assert first.checkpoints >= 2
    _decide(node, agent, agent_id, 7)
    second = _auditor(node, scratch).run()
    assert second.entries == 7
    assert second.audited == size + 7


def test_a_decision_signed_by_a_smuggled_key_is_named(
    node: Node, agent: EnvelopeSigner, scratch: Engine
) -> None:
    agent_id = enrol(node, agent)
    _decide(node, agent, agent_id, 3)
    index = _smuggle(node, agent_id)
    with pytest.raises(CorruptEntry) as found:
        _auditor(node, scratch).run()
    assert found.value.index == index
    assert f"entry {index} is corrupt" in found.value.message


def test_the_background_audit_trips_the_alarm(node: Node, agent: EnvelopeSigner) -> None:
    agent_id = enrol(node, agent)
    _decide(node, agent, agent_id, 3)
    assert node.audit().entries > 0
    index = _smuggle(node, agent_id)
    with pytest.raises(IntegrityAlarm):
        node.audit()
    assert node.alarm.alarms()[0]["index"] == index
    with pytest.raises(IntegrityAlarm):
        _decide(node, agent, agent_id, 1)


def test_an_entry_that_no_longer_hashes_to_its_leaf_is_named(
    node: Node, agent: EnvelopeSigner, scratch: Engine
) -> None:
    agent_id = enrol(node, agent)
    _decide(node, agent, agent_id, 3)
    with write_tx(node.engine) as conn:
        conn.execute(update(entries).where(entries.c.idx == 6).values(data=b"{}"))
    with pytest.raises(CorruptEntry, match="entry 6 is corrupt: it does not hash"):
        _auditor(node, scratch).run()


def test_rebuild_names_a_corrupt_entry_instead_of_crashing(
    node: Node, agent: EnvelopeSigner
) -> None:
    agent_id = enrol(node, agent)
    _decide(node, agent, agent_id, 3)
    with write_tx(node.engine) as conn:
        conn.execute(update(entries).where(entries.c.idx == 2).values(data=b"not json"))
    with pytest.raises(CorruptEntry) as found:
        rebuild(node.store)
    assert found.value.index == 2
    assert found.value.status == 422
