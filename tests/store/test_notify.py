"""The bus between workers sharing one PostgreSQL database (LISTEN/NOTIFY)."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from custodes.store.db import open_engine
from custodes.store.notify import Bus, PgBus, bus_for
from tests.pgserver import ThrowawayPostgres

WAIT = 30.0  # bound on waiting for an event that should come at once
_names = itertools.count()


@pytest.fixture
def engine(postgres: ThrowawayPostgres) -> Iterator[Engine]:
    made = open_engine(postgres.new_database(f"bus{next(_names)}"), pool_size=2)
    yield made
    made.dispose()


def _received(bus: Bus, channel: str) -> queue.Queue[dict[str, Any]]:
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    bus.on(channel, got.put)
    return got


def _started(bus: PgBus) -> PgBus:
    bus.start()
    assert bus.listening.wait(WAIT), "the bus never connected"
    return bus


def test_a_message_reaches_every_other_worker_but_not_its_sender(engine: Engine) -> None:
    sender, first, second = PgBus(engine), PgBus(engine), PgBus(engine)
    echoes = _received(sender, "custodes_test")
    inboxes = [_received(first, "custodes_test"), _received(second, "custodes_test")]
    for bus in (sender, first, second):
        _started(bus)
    try:
        sender.tell("custodes_test", {"index": 7})
        for inbox in inboxes:
            assert inbox.get(timeout=WAIT)["index"] == 7
        sender.tell("custodes_test", {"index": 8})  # comes after 7 everywhere
        assert inboxes[0].get(timeout=WAIT)["index"] == 8
        assert echoes.empty()  # the sender acted on its own change; no echo
    finally:
        for bus in (sender, first, second):
            bus.stop()


def test_a_listener_that_lost_its_connection_reconnects_and_catches_up(
    engine: Engine, postgres: ThrowawayPostgres
) -> None:
    bus = PgBus(engine, retry=0.05)
    resyncs: queue.Queue[None] = queue.Queue()
    bus.on_resync(lambda: resyncs.put(None))
    inbox = _received(bus, "custodes_test")
    _started(bus)
    try:
        resyncs.get(timeout=WAIT)  # on connecting: catch up with what came before
        with psycopg.connect(postgres.dsn(engine.url.database), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'custodes bus %%'"
            )
        resyncs.get(timeout=WAIT)  # reconnected: catch up with what the gap missed
        assert bus.listening.wait(WAIT)
        PgBus(engine).tell("custodes_test", {"after": "reconnect"})
        assert inbox.get(timeout=WAIT)["after"] == "reconnect"
    finally:
        bus.stop()


def test_malformed_and_own_notifications_are_ignored(engine: Engine) -> None:
    bus = PgBus(engine)
    inbox = _received(bus, "custodes_test")
    bus.deliver("custodes_test", "not json")
    bus.deliver("custodes_test", '["a list"]')
    bus.deliver("custodes_test", f'{{"from": "{bus.worker}"}}')
    bus.deliver("custodes_test", '{"from": "another", "ok": true}')
    assert inbox.get_nowait() == {"from": "another", "ok": True}
    assert inbox.empty()


def test_a_failing_handler_does_not_silence_the_others(engine: Engine) -> None:
    bus = PgBus(engine)
    seen = threading.Event()

    def broken(_message: dict[str, Any]) -> None:
        raise RuntimeError("a bug in one handler")

    bus.on("custodes_test", broken)
    bus.on("custodes_test", lambda _message: seen.set())
    bus.deliver("custodes_test", '{"from": "another"}')
    assert seen.is_set()


def test_an_oversized_message_is_refused_before_it_is_sent(engine: Engine) -> None:
    with pytest.raises(ValueError, match="over"):
        PgBus(engine).tell("custodes_test", {"blob": "x" * 8000})


def test_sqlite_has_nobody_else_to_tell(tmp_path: Any) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        bus = bus_for(engine)
        assert type(bus) is Bus
        inbox = _received(bus, "custodes_test")
        bus.start()
        bus.tell("custodes_test", {"index": 1})
        bus.stop()
        assert inbox.empty()
    finally:
        engine.dispose()
