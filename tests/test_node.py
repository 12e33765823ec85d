"""Two ``Node``s on one PostgreSQL database, as two API workers: one leads, the other
follows, and an integrity alarm in one stops appends in both."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.errors import IntegrityAlarm
from custodes.node import ALARM_CHANNEL, Node
from tests.databases import node_settings
from tests.pgserver import ThrowawayPostgres

WAIT = 30.0
_names = itertools.count()


@pytest.fixture
def settings(postgres: ThrowawayPostgres, tmp_path: Path) -> Settings:
    return node_settings(tmp_path, postgres.new_database(f"node{next(_names)}"))


@pytest.fixture
def leader(settings: Settings) -> Iterator[Node]:
    node = Node(settings)
    node.start()
    try:
        assert node.leadership.wait(WAIT), "a lone worker never led"
        yield node
    finally:
        node.close()


def test_a_followers_entries_are_checkpointed_by_the_leader(
    leader: Node, settings: Settings
) -> None:
    follower = Node(settings)
    follower.start()
    try:
        assert not follower.is_leader
        index = follower.register_signer("agent", EnvelopeSigner.generate().public_key)
        assert leader.log.wait_for_checkpoint(index + 1, WAIT)
    finally:
        follower.close()


def test_an_alarm_in_the_leader_stops_appends_in_every_worker(
    leader: Node, settings: Settings
) -> None:
    follower = Node(settings)
    told = threading.Event()
    follower.bus.on(ALARM_CHANNEL, lambda _message: told.set())  # after its own handler
    follower.start()
    try:
        assert follower.bus.listening.wait(WAIT)  # type: ignore[attr-defined]
        leader.alarm.trip("a test alarm", {"size": 1})
        assert told.wait(WAIT), "the leader did not tell the other workers"
        assert [a["reason"] for a in follower.alarm.alarms()] == ["a test alarm"]
        with pytest.raises(IntegrityAlarm):
            follower.register_signer("agent", EnvelopeSigner.generate().public_key)
    finally:
        follower.close()
