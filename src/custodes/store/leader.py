"""Which of the processes sharing a database runs the node's background jobs.

Integration, checkpoint signing, witnessing and the audit need one process, not one
per API worker: ``PgLeadership`` holds a PostgreSQL session-level advisory lock on a
connection of its own. Whoever holds it leads; the others wait for it inside
``pg_advisory_lock``. When the leader's process dies its session ends, PostgreSQL
releases the lock and a waiting worker takes over at once (no lease to expire).

Leading is about not doing work twice, not about safety: integration locks the tree
state row and witnesses' sizes live in the database, so two leaders for a moment (a
leader whose lock connection broke still finishing a round) would do the same work
twice, never different work. The leader's connection is named ``custodes leader
<pid>`` in ``pg_stat_activity``, so an operator can see which worker leads.

``Leadership`` (the base) is the single-process case, SQLite's: always the leader.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

from custodes.store.notify import postgres_conninfo

__all__ = ["LEADER_LOCK", "Leadership", "PgLeadership", "leadership_for"]

log = logging.getLogger("custodes.store.leader")

# The advisory lock's key: "custodes" in ASCII, as one 64-bit number.
LEADER_LOCK = int.from_bytes(b"custodes", "big")


class Leadership:
    """Whether this process runs the node's background jobs; here, always."""

    def __init__(self) -> None:
        self._leading = threading.Event()
        self._elected: list[Callable[[], None]] = []
        self._deposed: list[Callable[[], None]] = []

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def on_elected(self, handler: Callable[[], None]) -> None:
        """Call ``handler()`` each time this process becomes the leader."""
        self._elected.append(handler)

    def on_deposed(self, handler: Callable[[], None]) -> None:
        """Call ``handler()`` each time this process stops leading."""
        self._deposed.append(handler)

    def wait(self, timeout: float) -> bool:
        """Block until this process leads (True) or ``timeout`` seconds pass."""
        return self._leading.wait(timeout)

    def start(self) -> None:
        self._lead()

    def stop(self) -> None:
        self._step_down()

    def _lead(self) -> None:
        self._leading.set()
        for handler in self._elected:
            handler()

    def _step_down(self) -> None:
        if self._leading.is_set():
            self._leading.clear()
            for handler in self._deposed:
                handler()


class PgLeadership(Leadership):
    """Lead while holding a PostgreSQL advisory lock on a dedicated connection."""

    def __init__(self, engine: Engine, *, check_every: float = 2.0, retry: float = 1.0) -> None:
        super().__init__()
        self._conninfo = postgres_conninfo(engine)
        self._check_every = check_every
        self._retry = retry
        self._stop = threading.Event()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None and not self.is_leader:
            conn.cancel_safe()  # stop waiting inside pg_advisory_lock
        if self._thread.is_alive():
            self._thread.join(timeout=self._check_every + 5)
        self._step_down()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._contend()
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    log.warning("lost the leadership connection (%s); contending again", exc)
            finally:
                if self.is_leader and not self._stop.is_set():
                    log.warning("this worker no longer leads the background jobs")
                self._step_down()
                self._conn = None
            self._stop.wait(self._retry)

    def _contend(self) -> None:
        pid = os.getpid()
        with psycopg.connect(
            self._conninfo, autocommit=True, application_name=f"custodes worker {pid}"
        ) as conn:
            self._conn = conn
            if self._stop.is_set():
                return
            if not self._acquire(conn):
                return
            name = f"custodes leader {pid}"
            conn.execute("SELECT set_config('application_name', %s, false)", (name,))
            log.info("worker %d leads the background jobs", pid)
            self._lead()
            while not self._stop.wait(self._check_every):
                conn.execute("SELECT 1")  # a broken connection has lost the lock: step down
            # Closing the connection below releases the lock for the next leader.

    def _acquire(self, conn: psycopg.Connection[tuple[object, ...]]) -> bool:
        """Wait for the lock (one leads); False once stopping. ``stop`` cancels the wait,
        and the wait ends every ``check_every`` anyway, in case the cancel came early."""
        conn.execute(f"SET lock_timeout = {int(self._check_every * 1000)}")
        while not self._stop.is_set():
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK,))
                return True
            except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
                continue
        return False


def leadership_for(engine: Engine) -> Leadership:
    """Leadership over ``engine``: an advisory lock on PostgreSQL, always-leader on SQLite."""
    return PgLeadership(engine) if engine.dialect.name == "postgresql" else Leadership()
