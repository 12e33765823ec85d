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

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.pool import QueuePool

from custodes.errors import StoreError

__all__ = [
    "BigId",
    "check_writable",
    "metadata",
    "open_engine",
    "read_tx",
    "store_error",
    "upgrade",
    "write_tx",
]

log = logging.getLogger("custodes.store")

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
        # A URI (``sqlite:///file:/path?mode=ro&uri=true``) names the file after "file:".
        path = url.split(":///", 1)[-1].removeprefix("file:").split("?", 1)[0]
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


# What a database refusal means for the person running the node: SQLSTATE codes
# (PostgreSQL) or fragments of SQLite's messages, the reason, and what to check.
_REFUSALS: tuple[tuple[frozenset[str], tuple[str, ...], str, str], ...] = (
    (
        frozenset({"53100"}),
        ("disk is full", "disk i/o error"),
        "the disk is full or failing",
        "free disk space on the database's volume",
    ),
    (
        frozenset({"25006"}),
        ("readonly database", "read-only", "unable to open database file"),
        "the database is read-only or its file cannot be opened",
        "check the permissions of the database file and its directory",
    ),
    (
        frozenset({"55P03", "40001", "40P01"}),
        ("database is locked", "database table is locked"),
        "the database is busy with another writer",
        "retry shortly",
    ),
    (
        frozenset({"53300", "57P01", "57P02", "57P03"}),
        ("connection", "could not connect", "server closed"),
        "the database server cannot be reached or is shutting down",
        "check that the database server is running and accepts connections",
    ),
)
_DEFAULT_REFUSAL = (
    "the database reported an error",
    "check disk space and permissions, and the node's log for the database's own message",
)
# Bad input or a bug, not a store failure: these keep their own meaning (never a 503).
_NOT_STORE_FAILURES = (IntegrityError, DataError, ProgrammingError)


def _refusal(exc: DBAPIError) -> tuple[str, str]:
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    text_ = str(exc.orig).lower()
    for codes, fragments, reason, hint in _REFUSALS:
        if sqlstate in codes or any(f in text_ for f in fragments):
            return reason, hint
    return _DEFAULT_REFUSAL


def store_error(exc: DBAPIError, action: str) -> StoreError:
    """Our StoreError for a driver error: logged with the driver's text, answered without it.

    ``action`` says what was refused ("write", "read", "migration"). The client gets a
    short reason and what to check; the node's log gets the driver's own message.
    """
    reason, hint = _refusal(exc)
    log.error("the database refused a %s: %s", action, str(exc.orig).strip()[:500])
    return StoreError(
        f"the node's database refused the {action}: {reason}; {hint}",
        detail={"reason": reason},
    )


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
    except _NOT_STORE_FAILURES:
        raise
    except DBAPIError as exc:
        raise store_error(exc, "write") from exc


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read transaction: one consistent snapshot for everything read inside it."""
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except _NOT_STORE_FAILURES:
        raise
    except DBAPIError as exc:
        raise store_error(exc, "read") from exc


def check_writable(engine: Engine) -> None:
    """Refuse (StoreError) a database that cannot take writes: a read-only file or server.

    A no-op update of the schema version row, rolled back, takes the same write lock
    and permissions as a real append without changing anything. The message is for the
    person starting the node, so it carries the driver's own words too.
    """
    try:
        with engine.connect() as conn:
            conn.execution_options(custodes_write=True)
            transaction = conn.begin()
            try:
                conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
            finally:
                transaction.rollback()
    except DBAPIError as exc:
        reason, hint = _refusal(exc)
        raise StoreError(
            f"the node's database cannot take writes: {reason} "
            f"({str(exc.orig).strip()[:200]}); {hint}",
            detail={"reason": reason},
        ) from exc


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
    except DBAPIError as exc:
        raise store_error(exc, "migration") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"could not migrate the database: {exc}") from exc
