"""Rebuild every projection by replaying the log, and compare it with the live tables.

``custodes registry rebuild`` runs this: it proves the registry (and the signer and
idempotency tables) are exactly what the log says, nothing more and nothing less.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, insert, select

from custodes.errors import CustodesError
from custodes.ledger.dsse import Envelope, parse_envelope
from custodes.ledger.errors import CorruptEntry
from custodes.ledger.payloads import (
    DECISION_TYPE,
    SIGNER_TYPE,
    CommittedDecision,
    DecisionRecord,
    SignerRecord,
    validate_payload,
)
from custodes.ledger.signers import apply_signer
from custodes.ledger.store import SqlLogStore, idempotency
from custodes.registry.models import KillOrder, PrincipalRecord, RegistryChange
from custodes.registry.projection import apply_change, apply_order, apply_principal
from custodes.registry.service import ORDER_TYPE, PRINCIPAL_TYPE, REGISTRY_TYPE
from custodes.registry.store import PROJECTION_TABLES
from custodes.store.db import metadata, open_engine, read_tx, upgrade, write_tx

__all__ = [
    "EntryCheck",
    "RebuildReport",
    "apply_entry",
    "rebuild",
    "register_entry_type",
    "register_envelope_type",
    "replay",
]

_CHUNK = 2_000
_CHANGE = TypeAdapter(RegistryChange)
Progress = Callable[[int, int], None]


@dataclass
class RebuildReport:
    entries: int
    tables: dict[str, tuple[int, int, bool]] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        return all(same for _live, _rebuilt, same in self.tables.values())


def _decision(conn: Connection, index: int, payload: bytes) -> None:
    # Plain (version 1) and committed (version 2) records both carry the agent and key;
    # a committed record's clear text is not in the log, and nothing here needs it.
    record = validate_payload(DECISION_TYPE, payload)
    if not isinstance(record, DecisionRecord | CommittedDecision) or not record.idempotency_key:
        return
    key = (record.agent, record.idempotency_key)
    seen = conn.execute(
        select(idempotency.c.entry_index).where(
            idempotency.c.agent == key[0], idempotency.c.key == key[1]
        )
    ).first()
    if seen is None:
        conn.execute(insert(idempotency).values(agent=key[0], key=key[1], entry_index=index))


def _order(conn: Connection, index: int, order: KillOrder) -> None:
    apply_order(conn, index, order)  # a selector resolves against the replayed state


_APPLY: dict[str, Callable[[Connection, int, bytes], None]] = {
    SIGNER_TYPE: lambda c, i, p: apply_signer(c, i, SignerRecord.model_validate_json(p)),
    PRINCIPAL_TYPE: lambda c, i, p: apply_principal(c, i, PrincipalRecord.model_validate_json(p)),
    REGISTRY_TYPE: lambda c, i, p: apply_change(c, i, _CHANGE.validate_json(p)),
    ORDER_TYPE: lambda c, i, p: _order(c, i, KillOrder.model_validate_json(p)),
    DECISION_TYPE: _decision,
}
_APPLY_ENVELOPE: dict[str, Callable[[Connection, int, Envelope], None]] = {}
_EXTRA_TABLES: list[str] = []


def register_entry_type(
    payload_type: str, apply: Callable[[Connection, int, bytes], None], tables: tuple[str, ...]
) -> None:
    """Replay ``payload_type`` entries with ``apply`` and compare ``tables`` too.

    For projections kept by adapters that this domain may not import (the alliance
    roster, custodes.federation.rosterlog, registers itself when imported).
    """
    _APPLY[payload_type] = apply
    _EXTRA_TABLES.extend(t for t in tables if t not in _EXTRA_TABLES)


def register_envelope_type(
    payload_type: str, apply: Callable[[Connection, int, Envelope], None], tables: tuple[str, ...]
) -> None:
    """As ``register_entry_type``, for projections that keep the whole envelope (its
    signatures count: a countersigned attestation, custodes.audits.store)."""
    _APPLY_ENVELOPE[payload_type] = apply
    _EXTRA_TABLES.extend(t for t in tables if t not in _EXTRA_TABLES)


# Checks an entry before it is applied (the audit verifies its signature here).
EntryCheck = Callable[[Connection, int, Envelope], None]


def apply_entry(conn: Connection, index: int, data: bytes, check: EntryCheck | None = None) -> None:
    """Apply one stored entry to the projections in ``conn``; name it if it is corrupt.

    The live path stored the entry only after it parsed, verified and applied, so any
    failure here means the stored bytes are not what the node accepted.
    """
    try:
        envelope = parse_envelope(orjson.loads(data))
        if check is not None:
            check(conn, index, envelope)
        apply = _APPLY.get(envelope.payload_type)
        if apply is not None:
            apply(conn, index, envelope.payload)
        whole = _APPLY_ENVELOPE.get(envelope.payload_type)
        if whole is not None:
            whole(conn, index, envelope)
    except CustodesError as exc:
        raise CorruptEntry(index, exc.message) from exc
    except (orjson.JSONDecodeError, ValidationError, ValueError) as exc:
        raise CorruptEntry(index, str(exc).splitlines()[0]) from exc


def replay(
    source: SqlLogStore,
    target: Engine,
    progress: Progress | None = None,
    check: EntryCheck | None = None,
    *,
    start: int = 0,
) -> int:
    """Apply the entries of ``source``'s log from ``start``, in order, to ``target``'s
    projections (empty when ``start`` is 0); return the size replayed to."""
    size = source.sequenced_size()
    for first in range(start, size, _CHUNK):
        with read_tx(source.engine) as conn:
            chunk = source.entry_data(conn, first, min(size, first + _CHUNK))
        with write_tx(target) as conn:
            for index, data in enumerate(chunk, first):
                apply_entry(conn, index, data, check)
        if progress is not None:
            progress(first + len(chunk), size)
    return size


def _rows(engine: Engine, table: str) -> list[tuple[object, ...]]:
    columns = metadata.tables[table]
    with read_tx(engine) as conn:
        rows = conn.execute(select(columns).order_by(*columns.primary_key.columns)).all()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]


def rebuild(source: SqlLogStore, progress: Progress | None = None) -> RebuildReport:
    """Replay ``source`` into a scratch SQLite database and compare every projection."""
    with tempfile.TemporaryDirectory(prefix="custodes-rebuild-") as scratch:
        target = open_engine(f"sqlite:///{Path(scratch) / 'rebuild.db'}")
        try:
            upgrade(target)
            report = RebuildReport(replay(source, target, progress))
            for table in (*PROJECTION_TABLES, *_EXTRA_TABLES):
                live, rebuilt = _rows(source.engine, table), _rows(target, table)
                report.tables[table] = (len(live), len(rebuilt), live == rebuilt)
        finally:
            target.dispose()
    return report
