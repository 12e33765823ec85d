"""A node never signs a checkpoint over a tampered database (SQLite and PostgreSQL).

The attacker here can write to the database but cannot read the key files: they change
rows, then wait for the node to sign on. Every case must trip the integrity alarm,
sign nothing more, refuse appends with 503 ``integrity_alarm``, and keep refusing after
a restart until a person clears the alarm.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, update

from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.errors import IntegrityAlarm
from custodes.ledger.integrity import AlarmLatch, HighWaterMark
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.store import checkpoints, entries, log_state, tree_state, tree_tiles
from custodes.node import Node
from custodes.sdk import sign_decision
from custodes.store.db import write_tx
from tests.enrol import enrol


def _decide(node: Node, agent: EnvelopeSigner, agent_id: str, count: int, tag: str) -> None:
    envelopes = [sign_decision(agent, agent_id, f"{tag} {i}", "why") for i in range(count)]
    node.log.append([e.to_json() for e in envelopes])
    node.log.integrate()


def _newest_size(node: Node) -> int:
    stored = node.store.checkpoint()
    assert stored is not None
    return stored.size


def _forge_last_decision(conn: Connection) -> None:
    """Replace the newest entry with other bytes and store their leaf hash too."""
    last = conn.execute(select(entries.c.idx).order_by(entries.c.idx.desc()).limit(1)).scalar_one()
    forged = b'{"forged": true}'
    conn.execute(
        update(entries)
        .where(entries.c.idx == last)
        .values(data=forged, leaf_hash=leaf_hash(forged))
    )


def _forge_tile_hash(conn: Connection) -> None:
    conn.execute(
        update(tree_tiles)
        .where(tree_tiles.c.level == 1, tree_tiles.c.idx == 0)
        .values(hash=b"\x07" * 32)
    )


def _bump_sequenced(conn: Connection) -> None:
    conn.execute(update(log_state).values(sequenced=log_state.c.sequenced + 5))


def _forge_root_and_tiles(conn: Connection) -> None:
    """Change a tile hash and make the tree state agree: only the signature catches it."""
    _forge_tile_hash(conn)
    conn.execute(update(tree_state).values(root=b"\x09" * 32))


def _drop_checkpoint(conn: Connection) -> None:
    conn.execute(checkpoints.delete())


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_forge_last_decision, id="right-edge-entry-and-leaf-hash"),
        pytest.param(_forge_tile_hash, id="stored-tile-hash"),
        pytest.param(_bump_sequenced, id="sequenced-size-bumped-over-a-hole"),
        pytest.param(_forge_root_and_tiles, id="tile-and-tree-root"),
        pytest.param(_drop_checkpoint, id="signed-checkpoints-deleted"),
    ],
)
def test_the_node_signs_nothing_over_a_tampered_database(
    node: Node, agent: EnvelopeSigner, tamper: Callable[[Connection], None]
) -> None:
    agent_id = enrol(node, agent)
    _decide(node, agent, agent_id, 300, "before")  # more than one full tile
    signed = _newest_size(node)
    with write_tx(node.engine) as conn:
        tamper(conn)

    with pytest.raises(IntegrityAlarm):
        _decide(node, agent, agent_id, 1, "after")
    # Either integration tripped the alarm (the append was refused) or it was refused
    # later; in both cases no checkpoint covers the forged history.
    with pytest.raises(IntegrityAlarm):
        node.log.integrate()
    stored = node.store.checkpoint()
    assert stored is None or stored.size == signed
    assert node.alarm.tripped
    with pytest.raises(IntegrityAlarm) as refused:
        node.log.append([sign_decision(agent, agent_id, "more", "why").to_json()])
    assert refused.value.status == 503
    assert refused.value.code == "integrity_alarm"


def test_an_untampered_node_grows_and_keeps_its_high_water_mark(
    node: Node, agent: EnvelopeSigner, settings: Settings
) -> None:
    agent_id = enrol(node, agent)
    for round_ in range(3):
        _decide(node, agent, agent_id, 120, f"round {round_}")
    assert not node.alarm.tripped
    # The mark is written just after the checkpoint is committed: wait for it to catch up.
    deadline = time.monotonic() + 30
    while True:
        mark = HighWaterMark(settings.data_dir / "high-water.json").read()
        if (mark is not None and mark[0] == _newest_size(node)) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert mark is not None
    assert mark[0] == _newest_size(node)


def test_a_database_restored_from_an_older_copy_is_caught_at_start(
    tmp_path: Path, agent: EnvelopeSigner
) -> None:
    settings = Settings(data_dir=tmp_path / "node", origin="rollback.test/log", jurisdiction="ZZ")
    database = settings.data_dir / "custodes.db"
    node = Node(settings)
    node.start()
    try:
        agent_id = enrol(node, agent)
        _decide(node, agent, agent_id, 10, "kept")
    finally:
        node.close()
    shutil.copytree(settings.data_dir, tmp_path / "backup")
    node = Node(settings)
    node.start()
    try:
        _decide(node, agent, agent_id, 10, "lost in the rollback")
        newest = _newest_size(node)
    finally:
        node.close()
    for suffix in ("", "-wal", "-shm"):  # restore the database, not the key files
        old = tmp_path / "backup" / f"custodes.db{suffix}"
        Path(f"{database}{suffix}").unlink(missing_ok=True)
        if old.exists():
            shutil.copy(old, f"{database}{suffix}")

    restored = Node(settings)
    restored.start()
    try:
        assert restored.alarm.tripped
        assert "high-water mark" in restored.alarm.alarms()[0]["reason"]
        assert restored.alarm.alarms()[0]["high_water_size"] == newest
        with pytest.raises(IntegrityAlarm):
            restored.log.append([sign_decision(agent, agent_id, "fork", "why").to_json()])
    finally:
        restored.close()


def test_the_alarm_survives_a_restart_until_it_is_cleared(
    node: Node, agent: EnvelopeSigner, settings: Settings
) -> None:
    agent_id = enrol(node, agent)
    node.alarm.trip("a witness holds size 99 of our log, we have 6", {"witness": "w"})
    node.close()
    again = Node(settings)
    again.start()
    try:
        assert again.alarm.tripped
        with pytest.raises(IntegrityAlarm):
            again.log.append([sign_decision(agent, agent_id, "x", "why").to_json()])
        again.alarm.clear()
        assert AlarmLatch(settings.data_dir / "integrity-alarm.json").tripped is False
        again.log.append([sign_decision(agent, agent_id, "y", "why").to_json()])
    finally:
        again.close()
