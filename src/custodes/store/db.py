"""Engine, transactions and migrations for SQLite (default) and PostgreSQL.

Writers must be serialised by the database, not by process memory, so several API
workers can share one PostgreSQL database (DESIGN.md 6):

* SQLite: WAL journal, ``synchronous=FULL`` (a committed transaction survives power
  loss, not just a killed process), and ``BEGIN IMMEDIATE`` for write transactions so
  two writers queue on the database lock instead of failing at commit.
* PostgreSQL: ``SELECT … FOR UPDATE`` on the state row a writer changes (see the
  domain stores); commits are durable by default (``fsync=on``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from custodes.errors import StoreError

__all__ = ["BigId", "metadata", "open_engine", "read_tx", "upgrade", "write_tx"]

metadata = MetaData()
# A 64-bit id everywhere; on SQLite an INTEGER PRIMARY KEY is the fast rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("custodes_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_engine(url: str, *, pool_size: int = 40) -> Engine:
    """The engine for ``url``; for SQLite, create the file's directory.

    The pool matches the API's worker threads (40, anyio's default): connections beyond
    the pool are opened and closed per use, which costs more than they save.
    """
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled connections: reconnecting per transaction re-ran the PRAGMAs and
        # checkpointed the WAL on every close (measured: 3x fewer single appends/s).
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=8,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=8, pool_pre_ping=True)


# SQLite has one write lock per database, and a writer that finds it taken polls for it
# (sleeping up to 100 ms between tries) while the sequencer takes it again and again: a
# lease renewal waited up to seconds. This process's writers queue on a lock instead and
# are woken as soon as it is free; other processes still meet SQLite's own lock.
_sqlite_writers: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def _writer_queue(engine: Engine) -> AbstractContextManager[object]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _writers_lock:
        return _sqlite_writers.setdefault(engine, threading.RLock())


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's write lock (SQLite) until commit."""
    try:
        with _writer_queue(engine), engine.connect() as conn:
            conn.execution_options(custodes_write=True)
            with conn.begin():
                yield conn
    except OperationalError as exc:
        raise StoreError(f"the database is unavailable: {exc.orig}") from exc


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read transaction: one consistent snapshot for everything read inside it."""
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except OperationalError as exc:
        raise StoreError(f"the database is unavailable: {exc.orig}") from exc


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command  # noqa: PLC0415 - Alembic loads only when migrating
    from alembic.config import Config  # noqa: PLC0415

    script_location = str(resources.files("custodes.store") / "migrations")
    config = Config()
    config.set_main_option("script_location", script_location)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"could not migrate the database: {exc}") from exc
