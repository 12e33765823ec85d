"""One leader among the workers sharing a PostgreSQL database (an advisory lock)."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from custodes.store.db import open_engine
from custodes.store.leader import Leadership, PgLeadership, leadership_for
from tests.pgserver import ThrowawayPostgres

WAIT = 30.0
_names = itertools.count()


@pytest.fixture
def engine(postgres: ThrowawayPostgres) -> Iterator[Engine]:
    made = open_engine(postgres.new_database(f"lead{next(_names)}"), pool_size=2)
    yield made
    made.dispose()


def _candidates(engine: Engine, count: int, **timing: float) -> list[PgLeadership]:
    return [PgLeadership(engine, **timing) for _ in range(count)]


def _started(candidates: list[PgLeadership]) -> queue.Queue[PgLeadership]:
    """Start every candidate; the queue receives each one as it is elected."""
    elected: queue.Queue[PgLeadership] = queue.Queue()
    for candidate in candidates:
        candidate.on_elected(lambda c=candidate: elected.put(c))  # type: ignore[misc]
        candidate.start()
    return elected


def _only_leader(candidates: list[PgLeadership], elected: queue.Queue[PgLeadership]) -> Any:
    leader = elected.get(timeout=WAIT)
    assert [c for c in candidates if c.is_leader] == [leader]
    return leader


def test_one_of_several_workers_leads_and_another_takes_over_when_it_stops(
    engine: Engine,
) -> None:
    candidates = _candidates(engine, 3, retry=0.05)
    elected = _started(candidates)
    try:
        first = _only_leader(candidates, elected)
        first.stop()
        second = _only_leader(candidates, elected)
        assert second is not first
        assert not first.is_leader
    finally:
        for candidate in candidates:
            candidate.stop()


def test_a_leader_whose_session_ends_steps_down_and_another_leads(
    engine: Engine, postgres: ThrowawayPostgres
) -> None:
    candidates = _candidates(engine, 2, check_every=0.05, retry=0.05)
    stepped_down = threading.Event()
    candidates[0].on_deposed(stepped_down.set)
    candidates[1].on_deposed(stepped_down.set)
    elected = _started(candidates)
    try:
        _only_leader(candidates, elected)
        with psycopg.connect(postgres.dsn(engine.url.database), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'custodes leader %%'"
            )
        # ``first`` notices its broken connection at its next check and steps down; the
        # other takes the released lock (or ``first`` again, reconnected: one leads).
        assert stepped_down.wait(WAIT), "a leader without its lock went on leading"
        _only_leader(candidates, elected)
    finally:
        for candidate in candidates:
            candidate.stop()


def test_a_waiting_worker_stops_without_waiting_for_the_lock(
    engine: Engine, postgres: ThrowawayPostgres
) -> None:
    leader, waiting = PgLeadership(engine), PgLeadership(engine)
    leader.start()
    try:
        assert leader.wait(WAIT)
        waiting.start()
        waiting.stop()  # cancels its wait inside pg_advisory_lock and disconnects
        with psycopg.connect(postgres.dsn(engine.url.database), autocommit=True) as admin:
            waiters = admin.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name LIKE 'custodes worker %%'"
            ).fetchone()
        assert waiters == (0,)
        assert not waiting.is_leader
    finally:
        leader.stop()


def test_on_sqlite_the_only_process_leads(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        leadership = leadership_for(engine)
        assert type(leadership) is Leadership
        elected = threading.Event()
        leadership.on_elected(elected.set)
        leadership.start()
        assert leadership.is_leader
        assert elected.is_set()
        leadership.stop()
        assert not leadership.is_leader
    finally:
        engine.dispose()
