"""Audit a node's log from its own database, trusting only its key files.

For every integrated entry, in order: the entry hashes to its stored leaf hash; its
envelope parses and its signature verifies under the signer history *in force at its
index* (replayed from the log itself, starting from the node's own entry key, so a
key slipped into the live ``signers`` table counts for nothing); node-only entries
(signer and principal registrations, access records) are signed by the node's key; a
decision is signed by the agent it names, plain or committed (a committed record's clear
text is not in the log and cannot be derived from it: the audit checks the signature
over the metadata and commitment, and the leaf hash, not the text); and at every size
the node signed a checkpoint for, the root of the re-derived tree equals that
checkpoint's root (its signature verified with the log key).

``custodes log audit`` runs it in full into a scratch database. The node runs it
incrementally in the background (``CUSTODES_AUDIT_INTERVAL``), keeping the replayed
signer history and its cursor in ``audit.db`` in the data directory; the cursor moves
in the same transaction as the replay, so a crash never applies an entry twice.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, Engine, select, text

from custodes.ledger.checkpoint import open_checkpoint
from custodes.ledger.dsse import Envelope, key_thumbprint, verify_envelope
from custodes.ledger.errors import CorruptEntry, EnvelopeError, LedgerError, NoteError
from custodes.ledger.merkle import CompactRange, leaf_hash
from custodes.ledger.note import NoteVerifier
from custodes.ledger.payloads import ACCESS_TYPE, DECISION_TYPE, SIGNER_TYPE
from custodes.ledger.store import SqlLogStore, StoredCheckpoint, signers
from custodes.registry.rebuild import apply_entry
from custodes.registry.service import PRINCIPAL_TYPE
from custodes.store.db import read_tx, upgrade, write_tx

__all__ = ["AuditReport", "LogAuditor"]

_CHUNK = 2_000
_NODE_ONLY = frozenset({SIGNER_TYPE, PRINCIPAL_TYPE, ACCESS_TYPE})
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class AuditReport:
    """How far the log is audited, and what this run covered."""

    audited: int
    entries: int
    checkpoints: int


class LogAuditor:
    """Replays ``store``'s log into ``target`` (projections plus a cursor) with checks."""

    def __init__(
        self, store: SqlLogStore, target: Engine, log_key: NoteVerifier, node_key: bytes
    ) -> None:
        self._store = store
        self._target = target
        self._log_key = log_key
        self._node_key = node_key
        self._node_keyid = key_thumbprint(node_key)
        upgrade(target)
        with write_tx(target) as conn:
            conn.execute(
                text("CREATE TABLE IF NOT EXISTS audit_cursor (id INTEGER PRIMARY KEY, state TEXT)")
            )

    def run(self, progress: Progress | None = None) -> AuditReport:
        """Audit every integrated entry not audited yet; raise ``CorruptEntry`` on the
        first that fails (its index and the reason in the message)."""
        size, _ = self._store.tree_size()
        entries = checkpoints = 0
        audited = self._cursor_size()
        while audited < size:
            done, signed = self._chunk(size)
            entries, checkpoints = entries + done, checkpoints + signed
            audited = self._cursor_size()
            if progress is not None:
                progress(audited, size)
        return AuditReport(audited, entries, checkpoints)

    # -- one chunk, in one target transaction ---------------------------------------
    def _chunk(self, size: int) -> tuple[int, int]:
        with write_tx(self._target) as conn:
            tree = self._load(conn)
            first = tree.size
            end = min(size, first + _CHUNK)
            if first >= end:
                return 0, 0
            with read_tx(self._store.engine) as source:
                rows = self._store.entry_rows(source, first, end)
            signed = {c.size: c for c in self._store.checkpoints_since(first + 1, end)}
            if [r[0] for r in rows] != list(range(first, end)):
                raise CorruptEntry(first, "entries under the signed tree are missing")
            for index, data, stored in rows:
                leaf = leaf_hash(data)
                if leaf != stored:
                    raise CorruptEntry(index, "it does not hash to its stored leaf hash")
                apply_entry(conn, index, data, self._check_signature)
                tree.append(leaf)
                if index + 1 in signed:
                    self._check_checkpoint(signed[index + 1], tree)
            self._save(conn, tree)
        return end - first, len(signed)

    def _check_signature(self, conn: Connection, index: int, envelope: Envelope) -> None:
        def lookup(keyid: str) -> bytes | None:
            if keyid == self._node_keyid:
                return self._node_key
            found = conn.execute(
                select(signers.c.public_key).where(
                    signers.c.keyid == keyid, signers.c.status == "active"
                )
            ).scalar_one_or_none()
            return None if found is None else bytes(found)

        verified = verify_envelope(envelope, lookup)
        if envelope.payload_type in _NODE_ONLY and self._node_keyid not in verified:
            raise EnvelopeError(f"a {envelope.payload_type} entry is not signed by the node")
        if envelope.payload_type == DECISION_TYPE:
            agent = orjson.loads(envelope.payload).get("agent")
            names = set(
                conn.execute(select(signers.c.name).where(signers.c.keyid.in_(verified))).scalars()
            )
            if agent not in names:
                raise EnvelopeError(
                    f"the decision names {agent!r} but is signed by {sorted(names)}"
                )

    def _check_checkpoint(self, checkpoint: StoredCheckpoint, tree: CompactRange) -> None:
        index = checkpoint.size - 1
        try:
            opened, _, _ = open_checkpoint(checkpoint.note, [self._log_key])
        except (NoteError, LedgerError) as exc:
            raise CorruptEntry(index, f"the checkpoint at size {checkpoint.size}: {exc}") from exc
        if opened.size != checkpoint.size or opened.root_hash != tree.root():
            raise CorruptEntry(
                index,
                f"the tree re-derived from the entries differs from the checkpoint the node "
                f"signed at size {checkpoint.size}",
            )

    # -- the cursor: audited size and the tree's compact range ----------------------
    @staticmethod
    def _load(conn: Connection) -> CompactRange:
        found = conn.execute(text("SELECT state FROM audit_cursor WHERE id = 1")).scalar()
        if found is None:
            return CompactRange()
        state = json.loads(found)
        border = [base64.b64decode(h) for h in state["border"]]
        return CompactRange.from_border(int(state["size"]), border)

    @staticmethod
    def _save(conn: Connection, tree: CompactRange) -> None:
        border = [base64.b64encode(h).decode() for h in tree.border]
        state = json.dumps({"size": tree.size, "border": border})
        conn.execute(text("DELETE FROM audit_cursor WHERE id = 1"))
        conn.execute(text("INSERT INTO audit_cursor (id, state) VALUES (1, :s)"), {"s": state})

    def _cursor_size(self) -> int:
        with read_tx(self._target) as conn:
            return self._load(conn).size
