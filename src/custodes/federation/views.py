"""What this node has seen of every log, and the split views it has proved.

``seen_checkpoints`` keeps, per origin, the newest checkpoint this node has seen as the
full signed note with the cosignatures it has (its own log's served checkpoint; for a
witnessed log, the note it cosigned with its own cosignature line): size and root alone
could not prove anything later (torchwood#72). ``split_alerts`` holds each proved split
view: the evidence bundle, the index of the entry that logged it, and whether the node's
admin has resolved it. While an alert on an origin is open the witness refuses that
origin's checkpoints (``refusal``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from custodes.errors import CustodesError, NotFound
from custodes.federation.evidence import Evidence
from custodes.ledger.checkpoint import Checkpoint
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.service import LogService
from custodes.store.db import metadata, read_tx, write_tx

__all__ = [
    "MISBEHAVIOUR_TYPE",
    "RESOLUTION_TYPE",
    "OriginMisbehaved",
    "SplitAlert",
    "SplitViews",
]

MISBEHAVIOUR_TYPE = "application/vnd.custodes.misbehaviour+json"
RESOLUTION_TYPE = "application/vnd.custodes.misbehaviour-resolution+json"

seen_checkpoints = Table(
    "seen_checkpoints",
    metadata,
    Column("origin", String(300), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)
split_alerts = Table(
    "split_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(300), nullable=False, index=True),
    Column("pair_key", String(64), nullable=False, unique=True),
    Column("evidence", Text, nullable=False),
    Column("entry_index", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("resolved_at", Float, nullable=True),
    Column("resolution", Text, nullable=True),
    Column("resolution_index", BigInteger, nullable=True),
)


class OriginMisbehaved(CustodesError):
    """The witness refuses a log it holds evidence of misbehaviour against."""

    code = "origin_misbehaved"
    status = 403


@dataclass(frozen=True)
class SplitAlert:
    id: int
    origin: str
    pair_key: str
    evidence: dict[str, Any]
    entry_index: int
    created_at: float
    resolved_at: float | None
    resolution: str | None
    resolution_index: int | None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "origin": self.origin,
            "case": self.evidence.get("case"),
            "entry_index": self.entry_index,
            "created_at": self.created_at,
            "open": self.open,
            "resolved_at": self.resolved_at,
            "resolution": self.resolution,
            "resolution_index": self.resolution_index,
            "evidence": self.evidence,
        }


def _alert(row: Any) -> SplitAlert:
    return SplitAlert(
        id=int(row.id),
        origin=str(row.origin),
        pair_key=str(row.pair_key),
        evidence=orjson.loads(row.evidence),
        entry_index=int(row.entry_index),
        created_at=float(row.created_at),
        resolved_at=None if row.resolved_at is None else float(row.resolved_at),
        resolution=row.resolution,
        resolution_index=None if row.resolution_index is None else int(row.resolution_index),
    )


class SplitViews:
    """The node's views of every log, its proved split views, and the witness's refusals."""

    def __init__(
        self,
        engine: Engine,
        log: LogService,
        entry_signer: EnvelopeSigner,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._log = log
        self._signer = entry_signer
        self._clock = clock

    # -- what was seen -------------------------------------------------------------
    def observe(self, origin: str, size: int, root: bytes, note: bytes) -> None:
        """Keep ``note`` as the view of ``origin`` unless a larger one is kept already."""
        values = {"size": size, "root": root, "note": note, "updated_at": self._clock()}
        with write_tx(self._engine) as conn:
            row = conn.execute(
                select(seen_checkpoints.c.size)
                .where(seen_checkpoints.c.origin == origin)
                .with_for_update()
            ).one_or_none()
            if row is None:
                conn.execute(insert(seen_checkpoints).values(origin=origin, **values))
            elif size >= int(row.size):
                conn.execute(
                    update(seen_checkpoints)
                    .where(seen_checkpoints.c.origin == origin)
                    .values(**values)
                )

    def observe_checkpoint(self, checkpoint: Checkpoint, note: bytes) -> None:
        self.observe(checkpoint.origin, checkpoint.size, checkpoint.root_hash, note)

    def seen(self) -> dict[str, bytes]:
        """Every origin's newest seen checkpoint, as the verbatim note."""
        with read_tx(self._engine) as conn:
            rows = conn.execute(
                select(seen_checkpoints.c.origin, seen_checkpoints.c.note).order_by(
                    seen_checkpoints.c.origin
                )
            ).all()
        return {str(r.origin): bytes(r.note) for r in rows}

    # -- alerts ------------------------------------------------------------------
    def alerts(self) -> list[SplitAlert]:
        with read_tx(self._engine) as conn:
            rows = conn.execute(select(split_alerts).order_by(split_alerts.c.id)).all()
        return [_alert(r) for r in rows]

    def alert(self, alert_id: int) -> SplitAlert:
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(split_alerts).where(split_alerts.c.id == alert_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"there is no split-view alert {alert_id}", code="unknown_alert")
        return _alert(row)

    def known(self, key: str) -> bool:
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(split_alerts.c.id).where(split_alerts.c.pair_key == key)
            ).one_or_none()
        return row is not None

    def open_alert(self, origin: str) -> SplitAlert | None:
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(split_alerts)
                .where(split_alerts.c.origin == origin, split_alerts.c.resolved_at.is_(None))
                .order_by(split_alerts.c.id)
                .limit(1)
            ).one_or_none()
        return None if row is None else _alert(row)

    def refusal(self, origin: str) -> None:
        """The witness's hook: raise ``OriginMisbehaved`` while ``origin`` has an open alert."""
        alert = self.open_alert(origin)
        if alert is not None:
            raise OriginMisbehaved(
                f"this witness holds evidence that the log {origin} showed a split view "
                f"(entry {alert.entry_index}, alert {alert.id}) and cosigns nothing more "
                "from it until the alliance decides",
                detail={"alert": alert.id, "entry_index": alert.entry_index, "origin": origin},
            )

    # -- logging evidence and resolutions ------------------------------------------
    def report(self, evidence: Evidence) -> SplitAlert | None:
        """Log ``evidence`` once and raise an alert; None if this pair was logged already."""
        if self.known(evidence.key):
            return None
        payload = evidence.to_bytes()
        envelope = sign_envelope(MISBEHAVIOUR_TYPE, payload, [self._signer])

        def project(conn: Connection, index: int) -> None:
            conn.execute(
                insert(split_alerts).values(
                    origin=evidence.origin,
                    pair_key=evidence.key,
                    evidence=payload.decode(),
                    entry_index=index,
                    created_at=self._clock(),
                )
            )

        index = self._log.append_own(envelope, project)
        return next(a for a in self.alerts() if a.entry_index == index)

    def resolve(self, alert_id: int, reason: str) -> SplitAlert:
        """The admin lifts the refusal an alert put on its origin; logged with the reason."""
        alert = self.alert(alert_id)
        if not alert.open:
            raise CustodesError(
                f"alert {alert_id} was resolved already (entry {alert.resolution_index})",
                code="alert_resolved",
                status=409,
            )
        record = {
            "v": 1,
            "alert": alert.id,
            "origin": alert.origin,
            "evidence_index": alert.entry_index,
            "reason": reason,
        }
        envelope = sign_envelope(RESOLUTION_TYPE, orjson.dumps(record), [self._signer])

        def project(conn: Connection, index: int) -> None:
            conn.execute(
                update(split_alerts)
                .where(split_alerts.c.id == alert_id)
                .values(resolved_at=self._clock(), resolution=reason, resolution_index=index)
            )

        self._log.append_own(envelope, project)
        return self.alert(alert_id)
