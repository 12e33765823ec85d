"""Readiness: may a load balancer send this node traffic? Every failed check, named.

``readiness_failures`` is pure: from what ``read_readiness`` gathered at one moment
(database writable, schema revision, background threads, the alarm latch, how long
the oldest entry not yet in a checkpoint has waited) it returns each failed check with
a sentence a person can act on. Liveness (``/healthz``) asks none of this.

The checkpoint check measures the *lag* (the wait of the oldest sequenced entry that no
checkpoint covers yet), not the age of the newest checkpoint: a quiet log signs no new
checkpoint, and an idle node is ready. An entry waiting more than
``STALE_INTERVALS`` checkpoint intervals (``STALE_FLOOR_S`` at least) means
integration is stuck.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import Engine, select, text

from custodes.errors import CustodesError
from custodes.ledger.store import entries
from custodes.node import Node
from custodes.store.db import check_writable, read_tx

__all__ = [
    "STALE_FLOOR_S",
    "STALE_INTERVALS",
    "LogFigures",
    "Readiness",
    "read_figures",
    "read_readiness",
    "readiness_failures",
]

STALE_INTERVALS = 10
STALE_FLOOR_S = 10.0


@dataclass(frozen=True)
class LogFigures:
    """The log's state at one moment, as monitoring reads it."""

    tree_size: int
    sequenced: int
    checkpoint_age: float | None  # seconds since the newest checkpoint; None: none yet
    checkpoint_lag: float  # seconds the oldest entry not in a checkpoint has waited; 0: none


@dataclass(frozen=True)
class Readiness:
    database: str | None  # why the database cannot take writes; None when it can
    revision: str | None  # the schema's Alembic revision
    head: str  # the revision this code migrates to
    sequencer: bool
    integrator: bool
    alarms: int
    figures: LogFigures | None  # None when the database could not be read
    stale_after: float


def read_figures(node: Node, now: float | None = None) -> LogFigures:
    now = time.time() if now is None else now
    with read_tx(node.engine) as conn:
        size, _ = node.store.tree_size(conn)
        waiting = conn.execute(select(entries.c.sequenced_at).where(entries.c.idx == size))
        oldest = waiting.scalar_one_or_none()
    newest = node.store.checkpoint()
    return LogFigures(
        tree_size=size,
        sequenced=node.store.sequenced_size(),
        checkpoint_age=None if newest is None else max(0.0, now - newest.created_at),
        checkpoint_lag=0.0 if oldest is None else max(0.0, now - oldest),
    )


def read_readiness(node: Node) -> Readiness:
    database: str | None = None
    revision: str | None = None
    figures: LogFigures | None = None
    try:
        check_writable(node.engine)
        revision = _revision(node.engine)
        figures = read_figures(node)
    except CustodesError as exc:
        database = exc.message
    interval = node.settings.checkpoint_interval
    return Readiness(
        database=database,
        revision=revision,
        head=_head(),
        sequencer=node.log.sequencer.running,
        integrator=node.integrating,
        alarms=len(node.alarm.alarms()),
        figures=figures,
        stale_after=max(STALE_FLOOR_S, STALE_INTERVALS * interval),
    )


def readiness_failures(state: Readiness) -> dict[str, str]:
    """Each failed check's name and what it means; empty when the node is ready."""
    failed: dict[str, str] = {}
    if state.database is not None:
        failed["database"] = state.database
        return failed  # nothing else could be read
    if state.revision != state.head:
        failed["migrations"] = (
            f"the database schema is at revision {state.revision}, this node needs "
            f"{state.head}; restart the node (it migrates at start) or run its migrations"
        )
    if not state.sequencer:
        failed["sequencer"] = "the sequencer thread is not running; appends cannot commit"
    if not state.integrator:
        failed["integrator"] = "the integrator thread is not running; no checkpoint is signed"
    if state.alarms:
        failed["integrity"] = (
            f"{state.alarms} integrity alarm(s) stop appends; see GET /api/v1/health and "
            "clear them with `custodes log alarm --clear` once investigated"
        )
    lag = state.figures.checkpoint_lag if state.figures is not None else 0.0
    if lag > state.stale_after:
        failed["checkpoint"] = (
            f"an entry has waited {lag:.0f} s for a checkpoint (limit {state.stale_after:.0f} "
            "s); integration is stuck or far behind: see the node's log"
        )
    return failed


def _revision(engine: Engine) -> str | None:
    # Alembic's own MigrationContext costs ~8 ms a probe; one row is all it reads.
    with read_tx(engine) as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


@functools.cache
def _head() -> str:
    """The newest revision this code ships (read once: it cannot change while running)."""
    from alembic.config import Config  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(resources.files("custodes.store") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    return head or ""
