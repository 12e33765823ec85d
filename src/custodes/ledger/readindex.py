"""Read indexes over the integrated log: an agent's decisions by time, results by suite.

The log is the truth; an index is a projection of it that a reader can rebuild at any
time (docs/design/0009-read-side.md). Each index keeps a watermark (``read_index_state``:
the tree size it covers) and catches up from it: the entries in ``[watermark, tree
size)`` of its payload type are parsed *outside* any write transaction, then their rows
and the new watermark are written in one short transaction that re-checks the watermark
under a lock, so several processes sharing a database never index an entry twice. A
fresh database (or migration 0006 over an existing log) starts at 0: the first catch-up
is the backfill. Nothing here runs on the append path.

Tables (migration 0006): ``read_index_state``, ``decision_index`` (decisions by agent,
``decided_at`` in microseconds since the epoch, UTC, then log index).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Select,
    String,
    Table,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)

from custodes.errors import BadRequest
from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.store import checkpoints, entries, tree_state
from custodes.store.db import BigId, metadata, read_tx, write_tx

__all__ = [
    "DECISIONS",
    "IndexedKind",
    "Position",
    "ReadIndex",
    "Row",
    "decision_row",
    "micros",
    "newest_checkpoint_at_most",
    "select_decisions",
    "select_entries_at",
    "select_entries_of",
]

log = logging.getLogger("custodes.ledger.readindex")

read_index_state = Table(
    "read_index_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
)
decision_index = Table(
    "decision_index",
    metadata,
    Column("idx", BigId, primary_key=True, autoincrement=False),
    Column("agent_id", String(256), nullable=False),
    Column("decided_at", BigInteger, nullable=False),
)
Index("ix_decision_index_agent_time", decision_index.c.agent_id, decision_index.c.decided_at)

_CHUNK = 2_000  # entries read per step; each step's write transaction stays short
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATETIME = TypeAdapter(datetime)

Row = dict[str, object]
# (log index, the entry's payload bytes) -> the index row, or None to skip the entry.
Extract = Callable[[int, bytes], Row | None]


@dataclass(frozen=True)
class IndexedKind:
    """One index: its name (its watermark's key), the payload type it reads, its table."""

    name: str
    payload_type: str
    table: Table
    extract: Extract


def parse_instant(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 instant with its offset (``None`` stays ``None``); ``BadRequest``
    (``bad_instant``) naming ``name`` (a query parameter, a command's option) if not."""
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value.strip())
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise BadRequest(
            f"{name} must be an RFC 3339 instant with an offset, e.g. 2025-01-02T03:04:05Z; "
            f"got {value!r}",
            code="bad_instant",
            detail={"parameter": name, "value": value},
        )
    return instant


def micros(instant: datetime) -> int:
    """Microseconds since the epoch; a time without an offset is taken as UTC."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def decision_row(index: int, payload: bytes) -> Row | None:
    """The index row of a decision record: its agent and when it says it decided.

    Parsed as the log accepted it (pydantic's datetime rules), without revalidating the
    whole record: the node checked it before sequencing.
    """
    record = orjson.loads(payload)
    decided_at = _DATETIME.validate_python(record["decided_at"])
    return {"idx": index, "agent_id": str(record["agent"]), "decided_at": micros(decided_at)}


DECISIONS = IndexedKind("decisions", DECISION_TYPE, decision_index, decision_row)


def _payload(data: bytes) -> bytes:
    return base64.b64decode(orjson.loads(data)["payload"])


def _rows(kind: IndexedKind, found: Sequence[tuple[int, bytes]]) -> list[Row]:
    rows = []
    for index, data in found:
        try:
            row = kind.extract(index, _payload(data))
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            # A stored entry that no longer parses is tampering: the audit names it and
            # trips the alarm. The index leaves it out rather than stop serving reads.
            log.warning("%s index: entry %d does not parse (%s); left out", kind.name, index, exc)
            continue
        if row is not None:
            rows.append(row)
    return rows


def newest_checkpoint_at_most(conn: Connection, size: int) -> int | None:
    """The largest tree size up to ``size`` with a stored signed checkpoint."""
    found = conn.execute(
        select(func.max(checkpoints.c.size)).where(checkpoints.c.size <= size)
    ).scalar_one_or_none()
    return None if found is None else int(found)


class ReadIndex:
    """The read indexes of one log, each caught up from its watermark to the tree size."""

    def __init__(self, engine: Engine, kinds: Sequence[IndexedKind]) -> None:
        self.engine = engine
        self.kinds = {kind.name: kind for kind in kinds}

    def covered(self, name: str) -> int:
        """The tree size the index ``name`` covers."""
        with read_tx(self.engine) as conn:
            return self._watermark(conn, name) or 0

    def catch_up_all(self, *, budget: int | None = None) -> None:
        for name in self.kinds:
            self.catch_up(name, budget=budget)

    def catch_up(self, name: str, *, budget: int | None = None) -> int:
        """Index the integrated entries past the watermark (at most ``budget`` of them,
        all when None); return the tree size now covered."""
        kind = self.kinds[name]
        with read_tx(self.engine) as conn:
            done = self._watermark(conn, name) or 0
            target = int(conn.execute(select(tree_state.c.size)).scalar_one())
        if budget is not None:
            target = min(target, done + budget)
        while done < target:
            done = self._step(kind, done, min(target, done + _CHUNK))
        return done

    def _step(self, kind: IndexedKind, start: int, end: int) -> int:
        with read_tx(self.engine) as conn:
            found = conn.execute(select_entries_of(kind.payload_type, start, end)).all()
        rows = _rows(kind, [(int(r.idx), bytes(r.data)) for r in found])
        with write_tx(self.engine) as conn:
            current = self._watermark(conn, kind.name, lock=True)
            if (current or 0) != start:
                return current or 0  # another process indexed this stretch meanwhile
            if rows:
                conn.execute(insert(kind.table), rows)
            state = read_index_state
            if current is None:  # an index added after the migration that made the table
                conn.execute(insert(state).values(name=kind.name, size=end))
            else:
                conn.execute(update(state).where(state.c.name == kind.name).values(size=end))
        return end

    @staticmethod
    def _watermark(conn: Connection, name: str, *, lock: bool = False) -> int | None:
        query = select(read_index_state.c.size).where(read_index_state.c.name == name)
        found = conn.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        return None if found is None else int(found)


def select_entries_of(payload_type: str, start: int, end: int) -> Select[tuple[int, bytes]]:
    """The entries of ``payload_type`` in ``[start, end)`` (a range of the primary key)."""
    return (
        select(entries.c.idx, entries.c.data)
        .where(entries.c.idx >= start, entries.c.idx < end, entries.c.payload_type == payload_type)
        .order_by(entries.c.idx)
    )


def select_entries_at(indices: Sequence[int]) -> Select[tuple[int, bytes, bytes, str]]:
    """The stored entries, leaf hashes and types at ``indices`` (primary-key look-ups)."""
    return select(entries.c.idx, entries.c.data, entries.c.leaf_hash, entries.c.payload_type).where(
        entries.c.idx.in_(list(indices))
    )


@dataclass(frozen=True)
class Position:
    """Where a page of decisions ends: (decided_at in microseconds, log index)."""

    decided_at: int
    index: int


def select_decisions(
    agent_id: str,
    size: int,
    window: tuple[int | None, int | None],
    after: Position | None,
    limit: int,
) -> Select[tuple[int, int]]:
    """Decisions of ``agent_id`` below tree ``size`` in ``[from, to)`` (microseconds), by
    (decided_at, index), after ``after``: one range seek on the (agent, time) index."""
    start, end = window
    c = decision_index.c
    conditions = [c.agent_id == agent_id, c.idx < size]
    lower = start
    if after is not None:
        lower = after.decided_at if start is None else max(start, after.decided_at)
        conditions.append(or_(c.decided_at > after.decided_at, c.idx > after.index))
    if lower is not None:
        conditions.append(c.decided_at >= lower)
    if end is not None:
        conditions.append(c.decided_at < end)
    return (
        select(c.idx, c.decided_at)
        .where(and_(*conditions))
        .order_by(c.decided_at, c.idx)
        .limit(limit)
    )
