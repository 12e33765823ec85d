"""Decision openings beside the log: the clear record and salt behind each commitment.

Table (migration 0010): ``decision_openings``, one row per version-2 decision, keyed by
its log index, with its commitment. A row is written in the transaction that sequences
its entry (``SqlLogStore.sequence_group``), so an acknowledged append has its clear text
durable too. Erasure empties ``salt`` and ``record`` and says where and by whom it was
erased; the log itself is never touched, so every proof stays valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Connection, Float, String, Table, Text, select, update

from custodes.store.db import BigId, metadata

__all__ = [
    "OPENING_COLUMNS",
    "StoredOpening",
    "decision_openings",
    "erase_opening",
    "openings_at",
]

decision_openings = Table(
    "decision_openings",
    metadata,
    Column("idx", BigId, primary_key=True, autoincrement=False),
    Column("commitment", String(71), nullable=False),
    Column("salt", String(128), nullable=True),
    Column("record", Text, nullable=True),
    Column("erased_index", BigInteger, nullable=True),
    Column("erased_by", String(256), nullable=True),
    Column("erased_at", Float, nullable=True),
)

# The columns the sequencer writes, in ``SequencedEntry.opening`` order after the index.
OPENING_COLUMNS = ("idx", "commitment", "salt", "record")


@dataclass(frozen=True)
class StoredOpening:
    """One decision's row: the clear record (JSON text) and salt, or where it was erased."""

    index: int
    commitment: str
    salt: str | None
    record: str | None
    erased_index: int | None
    erased_by: str | None

    @property
    def erased(self) -> bool:
        return self.erased_index is not None


def openings_at(conn: Connection, indices: Sequence[int]) -> dict[int, StoredOpening]:
    """The stored openings of the decisions at ``indices`` (version 1 records have none)."""
    c = decision_openings.c
    found = conn.execute(
        select(c.idx, c.commitment, c.salt, c.record, c.erased_index, c.erased_by).where(
            c.idx.in_(list(indices))
        )
    )
    return {
        int(r.idx): StoredOpening(
            int(r.idx),
            r.commitment,
            r.salt,
            r.record,
            None if r.erased_index is None else int(r.erased_index),
            r.erased_by,
        )
        for r in found
    }


def erase_opening(conn: Connection, index: int, erased_index: int, by: str, at: float) -> None:
    """Destroy the clear record and salt at ``index``; keep where and by whom."""
    conn.execute(
        update(decision_openings)
        .where(decision_openings.c.idx == index)
        .values(salt=None, record=None, erased_index=erased_index, erased_by=by, erased_at=at)
    )
