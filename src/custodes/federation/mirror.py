"""A verified mirror of one peer's registry, fed from its log over C2SP tlog-tiles.

Each peer gets its own SQLite database under the data directory (``mirror/<code>.db``)
with the node's schema, so ``RegistryQueries`` and ``status_at`` answer over it unchanged,
plus three tables of its own: the peer's leaf hashes (inclusion proofs at the mirrored
checkpoint), the raw registry entries (so a reader can re-hash the leaf), and one row of
state (the newest verified checkpoint note verbatim, when it was verified, the size
mirrored, and the alarm when the peer was caught rewriting its history).

``PeerMirror.advance`` is one step: given the peer's checkpoint note and a way to fetch
its entry bundles, verify the log signature, re-derive every new leaf from the bundles,
grow the tree from the mirrored one and require the checkpoint's root (consistency by
recomputation: the old leaves are not re-fetched, so the new tree extends the one
verified before, or the roots differ), then replay the new entries into the projection,
all in one transaction. A peer whose checkpoint shrank, forked at the same size or does
not extend the mirrored tree is halted: the mirror keeps what it had, with the evidence.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    insert,
    select,
    update,
)

from custodes.audits.models import AUDIT_TYPES
from custodes.audits.store import AUDIT_TABLES  # noqa: F401 - registers the audit replays
from custodes.evals.results import DRIFT_ALERT_TYPE, RESULT_TYPE
from custodes.federation.roster import Party
from custodes.ledger.checkpoint import Checkpoint, open_checkpoint
from custodes.ledger.cosignature import cosignatures_in
from custodes.ledger.errors import CorruptEntry, LedgerError
from custodes.ledger.merkle import CompactRange, inclusion_proof, leaf_hash, root_of
from custodes.ledger.note import NoteVerifier, parse_vkey
from custodes.ledger.payloads import SIGNER_TYPE
from custodes.ledger.tiles import TILE_WIDTH, decode_entry_bundle, entries_path, tile_width
from custodes.registry.queries import RegistryQueries
from custodes.registry.rebuild import apply_entry
from custodes.registry.service import ORDER_TYPE, PRINCIPAL_TYPE, REGISTRY_TYPE
from custodes.store.db import BigId, open_engine, read_tx, upgrade, write_tx

__all__ = ["MirrorDiverged", "MirrorState", "PeerMirror"]

FetchMany = Callable[[Sequence[str]], list[bytes]]
# Raw entries kept (a reader re-hashes them to the leaf): the registry's, and what a
# recognition rests on or records (evaluation results, drift alerts, the audit entries).
_KEPT = frozenset(
    {
        REGISTRY_TYPE,
        PRINCIPAL_TYPE,
        ORDER_TYPE,
        SIGNER_TYPE,
        RESULT_TYPE,
        DRIFT_ALERT_TYPE,
        *AUDIT_TYPES,
    }
)
_BATCH = 64  # bundles per fetch round

_meta = MetaData()
mirror_state = Table(
    "mirror_state",
    _meta,
    Column("id", Integer, primary_key=True),
    Column("size", BigId, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", LargeBinary, nullable=True),
    Column("verified_at", Float, nullable=True),
    Column("alarm", Text, nullable=True),
)
mirror_leaves = Table(
    "mirror_leaves",
    _meta,
    Column("idx", BigId, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)
mirror_entries = Table(
    "mirror_entries",
    _meta,
    Column("idx", BigId, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)


class MirrorDiverged(LedgerError):
    """The peer signed a checkpoint that does not extend the tree mirrored before."""

    code = "mirror_diverged"
    status = 409


@dataclass(frozen=True)
class MirrorState:
    """What the mirror of one peer holds: verified size, root, note, when, any alarm."""

    code: str
    size: int
    root: bytes
    note: bytes | None
    verified_at: float | None
    alarm: dict[str, Any] | None = None

    def age(self, now: float) -> float | None:
        return None if self.verified_at is None else max(0.0, now - self.verified_at)


def _new_leaves(start: int, size: int, fetch_many: FetchMany) -> list[bytes]:
    """The raw entries ``[start, size)`` from the peer's entry bundles."""
    first, last = start // TILE_WIDTH, (size - 1) // TILE_WIDTH
    refs = [(i, tile_width(0, i, size)) for i in range(first, last + 1)]
    entries: list[bytes] = []
    for at in range(0, len(refs), _BATCH):
        chunk = refs[at : at + _BATCH]
        for (index, width), bundle in zip(
            chunk, fetch_many([entries_path(i, w) for i, w in chunk]), strict=True
        ):
            got = decode_entry_bundle(bundle)
            if len(got) != width:
                raise CorruptEntry(index * TILE_WIDTH, "an entry bundle has the wrong width")
            entries.extend(got)
    return entries[start - first * TILE_WIDTH :]


def _diverged(state: MirrorState, checkpoint: Checkpoint, why: str, note: bytes) -> MirrorDiverged:
    return MirrorDiverged(
        f"the {state.code} log {why}: its mirror is halted with both checkpoints as evidence; "
        "ask the members to decide on that log before following it again",
        detail={
            "party": state.code,
            "mirrored_size": state.size,
            "mirrored_root": state.root.hex(),
            "mirrored_note": (state.note or b"").decode(),
            "new_size": checkpoint.size,
            "new_root": checkpoint.root_hash.hex(),
            "new_note": note.decode(),
        },
    )


class PeerMirror:
    """The mirror of one peer: its verified state, its leaves, its projection."""

    def __init__(self, party: Party, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.party, self.clock = party, clock
        self.log_key = parse_vkey(party.log_vkey)
        self.engine: Engine = open_engine(f"sqlite:///{path.resolve()}", pool_size=8)
        upgrade(self.engine)
        _meta.create_all(self.engine)
        self.queries = RegistryQueries(self.engine)
        self._lock = threading.Lock()
        self._leaves: list[bytes] = []
        self._tree = CompactRange()
        self._nodes: dict[tuple[int, int], bytes] = {}
        self.state = MirrorState(party.code, 0, self._tree.root(), None, None)
        self.refresh()

    def close(self) -> None:
        self.engine.dispose()

    # -- reading --------------------------------------------------------------------
    def refresh(self) -> MirrorState:
        """Catch up with what the database holds (another worker may be following)."""
        with read_tx(self.engine) as conn:
            row = conn.execute(select(mirror_state)).first()
            if row is None:
                return self.state
            new = conn.execute(
                select(mirror_leaves.c.hash)
                .where(mirror_leaves.c.idx >= len(self._leaves), mirror_leaves.c.idx < row.size)
                .order_by(mirror_leaves.c.idx)
            ).all()
        alarm = None if row.alarm is None else orjson.loads(row.alarm)
        with self._lock:
            if len(self._leaves) + len(new) == row.size:
                self._grow([bytes(r.hash) for r in new])
                self.state = MirrorState(
                    self.party.code, row.size, bytes(row.root), row.note, row.verified_at, alarm
                )
        return self.state

    def _grow(self, leaves: list[bytes]) -> None:
        self._leaves.extend(leaves)
        self._tree.extend(leaves)

    def _node(self, level: int, index: int) -> bytes:
        if level == 0:
            return self._leaves[index]
        key = (level, index)
        found = self._nodes.get(key)
        if found is None:
            found = root_of(self._leaves[index << level : (index + 1) << level])
            if level >= 4:  # perfect nodes never change: keep the costly ones
                self._nodes[key] = found
        return found

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in the peer's tree of ``size``."""
        with self._lock:
            return inclusion_proof(index, size, self._node)

    def leaf(self, index: int) -> bytes:
        with self._lock:
            return self._leaves[index]

    def entry(self, index: int) -> bytes | None:
        with read_tx(self.engine) as conn:
            row = conn.execute(
                select(mirror_entries.c.data).where(mirror_entries.c.idx == index)
            ).first()
        return None if row is None else bytes(row.data)

    def cosigners(self, note: bytes, witnesses: Sequence[NoteVerifier]) -> list[str]:
        """Names of the ``witnesses`` whose cosignature on ``note`` verifies."""
        _, parsed, _ = open_checkpoint(note, [self.log_key])
        return [v.name for v, _ts in cosignatures_in(parsed, witnesses)]

    # -- following ------------------------------------------------------------------
    def advance(
        self, note: bytes, fetch_many: FetchMany, witnesses: Sequence[NoteVerifier] = ()
    ) -> MirrorState:
        """Verify ``note`` (the peer's checkpoint) and mirror up to it; see the module."""
        state = self.state
        if state.alarm is not None:
            return state
        checkpoint, parsed, _ = open_checkpoint(note, [self.log_key])
        cosignatures_in(parsed, witnesses)  # a known witness's bad line raises here
        if checkpoint.origin != self.party.origin:
            raise MirrorDiverged(f"the {state.code} node serves another origin's checkpoint")
        now = self.clock()
        if checkpoint.size < state.size:
            raise self._halt(_diverged(state, checkpoint, "shrank", note))
        if checkpoint.size == state.size:
            if checkpoint.root_hash != state.root:
                raise self._halt(_diverged(state, checkpoint, "forked at one size", note))
            return self._touch(note, now)
        entries = _new_leaves(state.size, checkpoint.size, fetch_many)
        leaves = [leaf_hash(e) for e in entries]
        grown = CompactRange.from_border(state.size, self._tree.border)
        grown.extend(leaves)
        if grown.root() != checkpoint.root_hash:
            raise self._halt(
                _diverged(state, checkpoint, "does not extend the mirrored tree", note)
            )
        values = {"size": checkpoint.size, "root": checkpoint.root_hash, "note": note}
        self._commit(state.size, entries, leaves, {**values, "verified_at": now})
        return self.refresh()

    def _touch(self, note: bytes, now: float) -> MirrorState:
        with write_tx(self.engine) as conn:
            values = {"size": self.state.size, "root": self.state.root}
            _save_state(conn, {**values, "note": note, "verified_at": now})
        with self._lock:
            self.state = replace(self.state, note=note, verified_at=now)
        return self.state

    def _commit(
        self, start: int, entries: list[bytes], leaves: list[bytes], values: dict[str, Any]
    ) -> None:
        with write_tx(self.engine) as conn:
            for index, data in enumerate(entries, start):
                apply_entry(conn, index, data)
            conn.execute(
                insert(mirror_leaves), [{"idx": i, "hash": h} for i, h in enumerate(leaves, start)]
            )
            kept = [{"idx": i, "data": d} for i, d in enumerate(entries, start) if _is_kept(d)]
            if kept:
                conn.execute(insert(mirror_entries), kept)
            _save_state(conn, values)

    def _halt(self, error: MirrorDiverged) -> MirrorDiverged:
        """Record the alarm (the mirror keeps what it verified before) and return it."""
        alarm = {"reason": error.message, **error.detail}
        with write_tx(self.engine) as conn:
            if conn.execute(select(mirror_state.c.id)).first() is None:
                _save_state(conn, {"size": 0, "root": self.state.root})
            conn.execute(update(mirror_state).values(alarm=orjson.dumps(alarm).decode()))
        with self._lock:
            self.state = replace(self.state, alarm=alarm)
        return error


def _is_kept(data: bytes) -> bool:
    return orjson.loads(data).get("payloadType") in _KEPT


def _save_state(conn: Connection, values: dict[str, Any]) -> None:
    if conn.execute(select(mirror_state.c.id)).first() is None:
        conn.execute(insert(mirror_state).values(id=1, **values))
    else:
        conn.execute(update(mirror_state).values(**values))
