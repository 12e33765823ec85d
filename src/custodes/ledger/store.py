"""SqlLogStore: persistence for the log. It stores what the pure core computes.

Tables (see migration 0001): ``entries`` (sequenced entries and their leaf hashes),
``tree_tiles`` (perfect subtree hashes at tree levels 8, 16, 24 …, i.e. the hashes of
tlog-tiles levels 1, 2, 3 …; level-0 tiles are the entries' leaf hashes),
``checkpoints``, ``cosignatures``, ``signers``, ``witnessed_logs`` and ``witness_peers``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from custodes.errors import NotFound
from custodes.ledger.errors import DuplicateEntry
from custodes.ledger.merkle import NodeReader
from custodes.ledger.openings import OPENING_COLUMNS, decision_openings
from custodes.ledger.payloads import SIGNER_TYPE
from custodes.ledger.tiles import TILE_WIDTH, perfect_node_from_tiles
from custodes.store.db import BigId, metadata, read_tx, write_tx

__all__ = ["SequencedEntry", "SqlLogStore", "StoredCheckpoint"]

log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sequenced", BigInteger, nullable=False),
)
tree_state = Table(
    "tree_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
)
entries = Table(
    "entries",
    metadata,
    Column("idx", BigId, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary, nullable=False, index=True),
    Column("data", LargeBinary, nullable=False),
    Column("payload_type", String(200), nullable=False),
    Column("sequenced_at", Float, nullable=False),
)
tree_tiles = Table(
    "tree_tiles",
    metadata,
    Column("level", Integer, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hash", LargeBinary, nullable=False),
)
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigId, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)
cosignatures = Table(
    "cosignatures",
    metadata,
    Column("size", BigInteger, primary_key=True),
    Column("witness", String(300), primary_key=True),
    Column("line", Text, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)
signers = Table(
    "signers",
    metadata,
    Column("keyid", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("entry_index", BigInteger, nullable=False),
)
witnessed_logs = Table(
    "witnessed_logs",
    metadata,
    Column("origin", String(300), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("checkpoint", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)
# At most one entry per (agent, idempotency key): a retried decision gets its first index.
idempotency = Table(
    "idempotency",
    metadata,
    Column("agent", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("entry_index", BigInteger, nullable=False),
)
# Keys are looked up by key, then matched on agent (see ``_known_keys``).
Index("ix_idempotency_key", idempotency.c.key)
witness_peers = Table(
    "witness_peers",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("size", BigInteger, nullable=False),
)


# The node's own signer records: re-activating a retired key re-issues its first record,
# byte for byte. Their projection refuses a repeat that changes nothing, and no client
# can post them, so they are the one kind of entry that may appear twice.
_REISSUED = frozenset({SIGNER_TYPE})
_LOOKUP_CHUNK = 500  # values per IN list, far below SQLite's and PostgreSQL's limits
T = TypeVar("T")


def _blob(value: object) -> bytes:
    """A stored hash or entry as bytes, whatever type a hand-edited row now has.

    SQLite lets a tampered row change type (an UPDATE through a text function stores
    TEXT). Serving the value's bytes lets verifiers see the change and report it.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


@dataclass(frozen=True)
class SequencedEntry:
    data: bytes
    leaf_hash: bytes
    payload_type: str
    dedup: tuple[str, str] | None = None  # (agent, idempotency key)
    # (commitment, salt, clear record as JSON): kept beside the log, in the same commit.
    opening: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: bytes
    created_at: float


class _Seen:
    """Where each leaf hash and (agent, idempotency key) of a group already is: the
    stored log, as read inside the sequencing transaction, plus the batches accepted
    so far in that transaction."""

    def __init__(self, leaves: dict[bytes, int], keys: dict[tuple[str, str], int]) -> None:
        self.leaves, self.keys = leaves, keys

    def accept(self, batch: _Assigned) -> None:
        self.leaves.update(batch.leaves)
        self.keys.update(batch.keys)


class _Assigned:
    """One caller's batch given indices from ``first``: all of it is stored, or none."""

    def __init__(self, first: int, seen: _Seen) -> None:
        self.first, self.seen = first, seen
        self.indices: list[int] = []
        self.rows: list[tuple[int, bytes, bytes, str]] = []  # idx, leaf_hash, data, type
        self.leaves: dict[bytes, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        self.positions: dict[int, int] = {}  # index of a new row -> its batch position
        self.openings: list[tuple[int, str, str, str]] = []  # idx, commitment, salt, record

    def add(self, entry: SequencedEntry) -> None:
        """Give ``entry`` its index, or refuse it (``DuplicateEntry``)."""
        index = self._retried(entry)
        if index is None:
            self._refuse_replay(entry)
            index = self._new_row(entry)
        self.indices.append(index)

    def key_rows(self) -> list[tuple[str, str, int]]:
        """(agent, key, entry_index) of the idempotency keys this batch stores."""
        return [(a, k, i) for (a, k), i in self.keys.items()]

    def _where(self, leaf: bytes) -> int | None:
        return self.leaves.get(leaf, self.seen.leaves.get(leaf))

    def _retried(self, entry: SequencedEntry) -> int | None:
        """The first copy's index when ``entry`` retries an entry with its idempotency key."""
        if entry.dedup is None:
            return None
        first = self.keys.get(entry.dedup, self.seen.keys.get(entry.dedup))
        if first is None or self._where(entry.leaf_hash) == first:
            return first  # new key, or the identical entry again: exactly once
        agent, key = entry.dedup
        raise self._duplicate(
            first,
            f"{agent} already used idempotency key {key!r} for a different entry "
            f"(index {first}); give each new decision its own key",
        )

    def _refuse_replay(self, entry: SequencedEntry) -> None:
        if entry.payload_type in _REISSUED:
            return
        stored = self._where(entry.leaf_hash)
        if stored is not None:
            raise self._duplicate(
                stored,
                f"this entry is already in the log at index {stored}; a signed entry is "
                "stored once (send an idempotency key to retry an append safely)",
            )

    def _duplicate(self, index: int, message: str) -> DuplicateEntry:
        position = len(self.indices)
        earlier = self.positions.get(index)
        if earlier is not None:
            return DuplicateEntry(
                f"repeats entry {earlier} of this batch (same entry or same idempotency "
                "key); send each decision once, with its own key",
                detail={"entry": position, "same_as_entry": earlier},
            )
        return DuplicateEntry(message, detail={"entry": position, "index": index})

    def _new_row(self, entry: SequencedEntry) -> int:
        index = self.first + len(self.rows)
        self.rows.append((index, entry.leaf_hash, entry.data, entry.payload_type))
        self.positions[index] = len(self.indices)
        self.leaves[entry.leaf_hash] = index
        if entry.dedup is not None:
            self.keys[entry.dedup] = index
        if entry.opening is not None:
            self.openings.append((index, *entry.opening))
        return index


def _assign(batch: Sequence[SequencedEntry], first: int, seen: _Seen) -> _Assigned:
    """Indices for ``batch`` from ``first``; raises ``DuplicateEntry`` for a replay."""
    assigned = _Assigned(first, seen)
    for entry in batch:
        assigned.add(entry)
    return assigned


# One caller's outcome in a sequencing transaction: its indices, or why it was refused.
Outcome = list[int] | DuplicateEntry


def _assign_all(
    batches: Sequence[Sequence[SequencedEntry]], first: int, seen: _Seen
) -> tuple[list[Outcome], list[_Assigned]]:
    """Each batch's outcome, in order; a refused batch takes no index and no others down."""
    outcomes: list[Outcome] = []
    accepted: list[_Assigned] = []
    for batch in batches:
        try:
            assigned = _assign(batch, first, seen)
        except DuplicateEntry as exc:
            outcomes.append(_named(exc, len(batch)))
            continue
        seen.accept(assigned)
        accepted.append(assigned)
        outcomes.append(assigned.indices)
        first += len(assigned.rows)
    return outcomes, accepted


def _named(exc: DuplicateEntry, size: int) -> DuplicateEntry:
    """Say which entry of a batch was refused, as other per-entry errors do."""
    if size > 1:
        exc.message = f"entry {exc.detail['entry']}: {exc.message}"
        exc.args = (exc.message,)
    else:
        exc.detail.pop("entry", None)
    return exc


def _project(conn: Connection, project: Projector, first: int, outcome: Outcome) -> None:
    """Run a single batch's projection; a replay it lets through still rolls back.

    The projection's own refusals (e.g. "this principal exists") name the problem more
    precisely than "this entry is already in the log", so they speak first.
    """
    project(conn, outcome[0] if isinstance(outcome, list) else first)
    if isinstance(outcome, DuplicateEntry):
        raise outcome


def _chunks(values: Sequence[T], size: int = _LOOKUP_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_ENTRY_COLUMNS = ("idx", "leaf_hash", "data", "payload_type", "sequenced_at")
_KEY_COLUMNS = ("agent", "key", "entry_index")


def _marks(conn: Connection, count: int) -> str:
    """``count`` positional placeholders in the driver's style (sqlite3 ``?``, psycopg ``%s``)."""
    return ", ".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * count)


def _insert_many(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[object, ...]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) with one driver ``executemany``.

    The ingest path's rows hold only ints, floats, bytes and strings, which both drivers
    bind as they are; SQLAlchemy's per-row statement compilation and type processing
    cost more than the insert itself (about 17 us of 45 us an entry, measured).
    """
    quote = conn.dialect.identifier_preparer.quote
    names, marks = ", ".join(quote(c) for c in columns), _marks(conn, len(columns))
    # Only this module's table and column names are spliced in; every value is bound.
    statement = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608
    conn.exec_driver_sql(statement, list(rows))


def _select_in(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    values: Sequence[object],
    where: str | None = None,
) -> list[tuple[Any, ...]]:
    """``columns`` of the rows whose ``where`` column (default: the first) is in ``values``,
    in driver SQL, for the reason ``_insert_many`` gives."""
    quote = conn.dialect.identifier_preparer.quote
    names, key = ", ".join(quote(c) for c in columns), quote(where or columns[0])
    source, marks = quote(table.name), _marks(conn, len(values))
    # As in ``_insert_many``: only names are spliced in, every value is bound.
    statement = f"SELECT {names} FROM {source} WHERE {key} IN ({marks})"  # noqa: S608
    return [tuple(row) for row in conn.exec_driver_sql(statement, tuple(values))]


# Runs inside the sequencing transaction, with the first index assigned to the batch:
# a projection (e.g. the signer table) changes if and only if its entry is stored.
Projector = Callable[[Connection, int], None]


class SqlLogStore:
    """The log's tables, over any SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- sequencing ---------------------------------------------------------------
    def sequence(
        self, batch: Sequence[SequencedEntry], project: Projector | None = None
    ) -> list[int]:
        """Give ``batch`` durable indices in one transaction; return each entry's index.

        An entry whose (agent, idempotency key) is already stored, or appears earlier in
        the batch, is not stored again: it gets the index of the first copy. A replayed
        entry (same leaf hash) or a key reused for a different entry refuses the whole
        batch with ``DuplicateEntry``.
        """
        outcome = self.sequence_group([batch], project)[0]
        if isinstance(outcome, DuplicateEntry):
            raise outcome
        return outcome

    def sequence_group(
        self, batches: Sequence[Sequence[SequencedEntry]], project: Projector | None = None
    ) -> list[Outcome]:
        """Sequence several callers' batches in one transaction; each batch's outcome.

        Duplicates are found inside the transaction, under the sequencing lock, so two
        concurrent copies of one entry cannot both be stored. ``project`` (for a single
        batch) runs in the same transaction with the batch's first index.
        """
        with write_tx(self.engine) as conn:
            first = int(
                conn.execute(
                    select(log_state.c.sequenced).where(log_state.c.id == 1).with_for_update()
                ).scalar_one()
            )
            everything = [e for batch in batches for e in batch]
            seen = _Seen(
                self._known_leaves(conn, [e.leaf_hash for e in everything]),
                self._known_keys(conn, [e.dedup for e in everything if e.dedup]),
            )
            outcomes, accepted = _assign_all(batches, first, seen)
            self._insert(conn, first, accepted)
            if project is not None:
                _project(conn, project, first, outcomes[0])
        return outcomes

    @staticmethod
    def _insert(conn: Connection, first: int, accepted: Sequence[_Assigned]) -> None:
        now = time.time()
        rows = [(*r, now) for a in accepted for r in a.rows]
        keys = [k for a in accepted for k in a.key_rows()]
        openings = [o for a in accepted for o in a.openings]
        if rows:
            _insert_many(conn, entries, _ENTRY_COLUMNS, rows)
            conn.execute(
                update(log_state).where(log_state.c.id == 1).values(sequenced=first + len(rows))
            )
        if keys:
            _insert_many(conn, idempotency, _KEY_COLUMNS, keys)
        if openings:
            _insert_many(conn, decision_openings, OPENING_COLUMNS, openings)

    @staticmethod
    def _known_leaves(conn: Connection, leaves: Sequence[bytes]) -> dict[bytes, int]:
        """The first stored index of each of ``leaves`` that is in the log."""
        found: dict[bytes, int] = {}
        for chunk in _chunks(sorted(set(leaves))):
            for stored, idx in _select_in(conn, entries, ("leaf_hash", "idx"), chunk):
                leaf, index = _blob(stored), int(idx)
                found[leaf] = min(index, found.get(leaf, index))
        return found

    @staticmethod
    def _known_keys(
        conn: Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """The index stored for each of ``keys`` (agent, idempotency key) already used."""
        wanted = set(keys)
        found: dict[tuple[str, str], int] = {}
        for chunk in _chunks(sorted({key for _agent, key in wanted})):
            # By the key index, then matched on agent: SQLite answers a row-value IN
            # over (agent, key) with a full scan, a list of keys with one seek each.
            for agent, key, index in _select_in(conn, idempotency, _KEY_COLUMNS, chunk, "key"):
                if (agent, key) in wanted:
                    found[(agent, key)] = int(index)
        return found

    def sequenced_size(self) -> int:
        with read_tx(self.engine) as conn:
            return int(conn.execute(select(log_state.c.sequenced)).scalar_one())

    # -- tree state and reads -----------------------------------------------------
    def tree_size(self, conn: Connection | None = None) -> tuple[int, bytes]:
        if conn is None:
            with read_tx(self.engine) as c:
                return self.tree_size(c)
        row = conn.execute(select(tree_state.c.size, tree_state.c.root)).one()
        return int(row.size), bytes(row.root)

    @staticmethod
    def leaf_hashes(conn: Connection, start: int, end: int) -> list[bytes]:
        rows = conn.execute(
            select(entries.c.leaf_hash)
            .where(entries.c.idx >= start, entries.c.idx < end)
            .order_by(entries.c.idx)
        ).scalars()
        return [_blob(h) for h in rows]

    @staticmethod
    def tile_hashes(conn: Connection, level: int, start: int, end: int) -> list[bytes]:
        """Hashes ``[start, end)`` of tlog-tiles level ``level`` (0 = leaf hashes)."""
        if level == 0:
            return SqlLogStore.leaf_hashes(conn, start, end)
        rows = conn.execute(
            select(tree_tiles.c.hash)
            .where(tree_tiles.c.level == level, tree_tiles.c.idx >= start, tree_tiles.c.idx < end)
            .order_by(tree_tiles.c.idx)
        ).scalars()
        return [_blob(h) for h in rows]

    def node_reader(self, conn: Connection) -> NodeReader:
        """A NodeReader over the stored tiles, valid for this connection's snapshot.

        Each tile is read once per reader (one query instead of one per tree node): a
        perfect node never spans two tiles, so its hashes are a slice of one.
        """
        tiles: dict[tuple[int, int], list[bytes]] = {}

        def read(tile_level: int, start: int, end: int) -> list[bytes]:
            base = start - start % TILE_WIDTH
            tile = tiles.get((tile_level, base))
            if tile is None or len(tile) < end - base:
                tile = self.tile_hashes(conn, tile_level, base, base + TILE_WIDTH)
                tiles[(tile_level, base)] = tile
            hashes = tile[start - base : end - base]
            if len(hashes) != end - start:
                raise NotFound(
                    f"tree hashes {start}..{end} at tile level {tile_level} are not stored",
                    code="missing_tree_hashes",
                )
            return hashes

        return lambda level, index: perfect_node_from_tiles(level, index, read)

    @staticmethod
    def entry_data(conn: Connection, start: int, end: int) -> list[bytes]:
        rows = conn.execute(
            select(entries.c.data)
            .where(entries.c.idx >= start, entries.c.idx < end)
            .order_by(entries.c.idx)
        ).scalars()
        return [_blob(d) for d in rows]

    @staticmethod
    def index_of(conn: Connection, leaf: bytes) -> int | None:
        found = conn.execute(
            select(func.min(entries.c.idx)).where(entries.c.leaf_hash == leaf)
        ).scalar_one_or_none()
        return None if found is None else int(found)

    # -- integration --------------------------------------------------------------
    @staticmethod
    def lock_tree(conn: Connection) -> tuple[int, bytes, int]:
        """Lock the tree state for integration; return (size, root, sequenced size)."""
        row = conn.execute(
            select(tree_state.c.size, tree_state.c.root)
            .where(tree_state.c.id == 1)
            .with_for_update()
        ).one()
        sequenced = conn.execute(select(log_state.c.sequenced)).scalar_one()
        return int(row.size), bytes(row.root), int(sequenced)

    @staticmethod
    def entry_rows(conn: Connection, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """(index, entry, stored leaf hash) of the stored entries in ``[start, end)``."""
        rows = conn.execute(
            select(entries.c.idx, entries.c.data, entries.c.leaf_hash)
            .where(entries.c.idx >= start, entries.c.idx < end)
            .order_by(entries.c.idx)
        ).all()
        return [(int(r.idx), _blob(r.data), _blob(r.leaf_hash)) for r in rows]

    @staticmethod
    def checkpoint_note(conn: Connection, size: int) -> bytes | None:
        """The stored signed checkpoint at ``size``, read in the caller's transaction."""
        found = conn.execute(
            select(checkpoints.c.note).where(checkpoints.c.size == size)
        ).scalar_one_or_none()
        return None if found is None else _blob(found)

    @staticmethod
    def save_integration(
        conn: Connection,
        nodes: Sequence[tuple[int, int, bytes]],
        size: int,
        root: bytes,
        note: bytes,
    ) -> None:
        """Store new tile hashes, the new tree state and its signed checkpoint."""
        if nodes:
            conn.execute(
                insert(tree_tiles), [{"level": lv, "idx": i, "hash": h} for lv, i, h in nodes]
            )
        conn.execute(update(tree_state).where(tree_state.c.id == 1).values(size=size, root=root))
        conn.execute(
            insert(checkpoints).values(size=size, root=root, note=note, created_at=time.time())
        )

    # -- checkpoints and cosignatures --------------------------------------------
    def checkpoint(self, size: int | None = None) -> StoredCheckpoint | None:
        """The checkpoint at ``size``, or the newest one."""
        query = select(checkpoints)
        if size is None:
            query = query.order_by(checkpoints.c.size.desc()).limit(1)
        else:
            query = query.where(checkpoints.c.size == size)
        with read_tx(self.engine) as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        return StoredCheckpoint(int(row.size), bytes(row.root), bytes(row.note), row.created_at)

    def checkpoints_since(self, size: int, until: int | None = None) -> list[StoredCheckpoint]:
        """Stored checkpoints of sizes ``size`` and up (to ``until`` inclusive, if given)."""
        query = select(checkpoints).where(checkpoints.c.size >= size)
        if until is not None:
            query = query.where(checkpoints.c.size <= until)
        with read_tx(self.engine) as conn:
            rows = conn.execute(query.order_by(checkpoints.c.size)).all()
        return [
            StoredCheckpoint(int(r.size), bytes(r.root), bytes(r.note), r.created_at) for r in rows
        ]

    def newest_cosigned(self, quorum: int) -> int | None:
        """Size of the newest checkpoint with at least ``quorum`` cosignatures."""
        with read_tx(self.engine) as conn:
            found = conn.execute(
                select(cosignatures.c.size)
                .group_by(cosignatures.c.size)
                .having(func.count() >= quorum)
                .order_by(cosignatures.c.size.desc())
                .limit(1)
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def add_cosignature(self, size: int, witness: str, line: str, timestamp: int) -> None:
        with write_tx(self.engine) as conn:
            conn.execute(
                cosignatures.delete().where(
                    cosignatures.c.size == size, cosignatures.c.witness == witness
                )
            )
            conn.execute(
                insert(cosignatures).values(
                    size=size, witness=witness, line=line, timestamp=timestamp
                )
            )

    def has_cosignature(self, size: int, witness: str) -> bool:
        with read_tx(self.engine) as conn:
            found = conn.execute(
                select(cosignatures.c.size).where(
                    cosignatures.c.size == size, cosignatures.c.witness == witness
                )
            ).first()
        return found is not None

    def cosignature_lines(self, size: int) -> list[str]:
        with read_tx(self.engine) as conn:
            rows = conn.execute(
                select(cosignatures.c.line)
                .where(cosignatures.c.size == size)
                .order_by(cosignatures.c.witness)
            ).scalars()
            return list(rows)

    # -- witness client state (what each witness has cosigned of our log) ---------
    def peer_size(self, name: str) -> int:
        with read_tx(self.engine) as conn:
            found = conn.execute(
                select(witness_peers.c.size).where(witness_peers.c.name == name)
            ).scalar_one_or_none()
        return 0 if found is None else int(found)

    def set_peer_size(self, name: str, size: int) -> None:
        with write_tx(self.engine) as conn:
            conn.execute(witness_peers.delete().where(witness_peers.c.name == name))
            conn.execute(insert(witness_peers).values(name=name, size=size))
