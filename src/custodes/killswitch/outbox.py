"""OrderOutbox: kill orders this node forwards to agents' home nodes, kept until answered.

A host regulator's order for an agent homed elsewhere is written here in one transaction
(a message id, the Idempotency-Key, and the digest of what is sent) before the first
attempt to deliver it, so a crash, a restart or a home node that is down loses nothing:
the relay retries each ``queued`` row until the home answers 2xx (``delivered``) or a
final 4xx (``refused``). The home's answer is kept with the row (docs/design/0026).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from custodes.errors import NotFound
from custodes.store.db import metadata, read_tx, write_tx

__all__ = ["OrderOutbox", "OutboxRow", "OutboxState", "order_outbox"]

OutboxState = Literal["queued", "delivered", "refused"]

order_outbox = Table(
    "order_outbox",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("recipient", String(2), nullable=False),
    Column("issuer", String(128), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("agent_id", String(128), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the node-signed forward, sent as is every time
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("answered_at", Float, nullable=True),
    Column("answer_status", Integer, nullable=True),
    Column("answer", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_order_outbox_state_next", "state", "next_attempt"),
)


@dataclass(frozen=True)
class OutboxRow:
    message_id: str
    recipient: str
    issuer: str
    order_id: str
    agent_id: str
    digest: str
    body: bytes
    state: OutboxState
    attempts: int
    next_attempt: float
    created_at: float
    answered_at: float | None = None
    answer_status: int | None = None
    answer: dict[str, Any] | None = None
    last_error: str | None = None

    def public(self) -> dict[str, Any]:
        """What ``GET /api/v1/federation/outbox`` shows (not the signed body)."""
        return {
            "message_id": self.message_id,
            "to": self.recipient,
            "issuer": self.issuer,
            "order_id": self.order_id,
            "agent_id": self.agent_id,
            "digest": self.digest,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "answered_at": self.answered_at,
            "answer_status": self.answer_status,
            "answer": self.answer,
            "last_error": self.last_error,
        }


def _row(found: Any) -> OutboxRow:
    answer = None if found.answer is None else orjson.loads(found.answer)
    return OutboxRow(
        found.message_id,
        found.recipient,
        found.issuer,
        found.order_id,
        found.agent_id,
        found.digest,
        found.body.encode(),
        found.state,
        int(found.attempts),
        float(found.next_attempt),
        float(found.created_at),
        found.answered_at,
        found.answer_status,
        answer,
        found.last_error,
    )


def body_digest(body: bytes) -> str:
    """The fingerprint of what is sent (hex SHA-256), the same on every retry."""
    return hashlib.sha256(body).hexdigest()


class _GroupCommit:
    """Writes arriving while one commits wait and share the next transaction (a burst of
    forwards is a few commits, not one per forward); a group that fails is retried one
    write per transaction, so each caller gets its own outcome."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: deque[_Write] = deque()
        self._cond = threading.Condition()
        self._committing = False

    def run(self, write: Callable[[Connection], Any]) -> Any:
        item = _Write(write)
        with self._cond:
            self._queue.append(item)
        while not item.done.is_set():
            group = self._lead_or_wait(item)
            if group:
                self._commit(group)
        if item.error is not None:
            raise item.error
        return item.result

    def _lead_or_wait(self, item: _Write) -> list[_Write]:
        with self._cond:
            while self._committing and not item.done.is_set():
                self._cond.wait()
            if item.done.is_set():
                return []
            self._committing = True
            group = list(self._queue)
            self._queue.clear()
            return group

    def _commit(self, group: list[_Write]) -> None:
        try:
            try:
                with write_tx(self._engine) as conn:
                    results = [w.write(conn) for w in group]
                for w, result in zip(group, results, strict=True):
                    w.result = result
            except Exception:
                for w in group:
                    w.alone(self._engine)
        finally:
            for w in group:
                w.done.set()
            with self._cond:
                self._committing = False
                self._cond.notify_all()


@dataclass
class _Write:
    write: Callable[[Connection], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    def alone(self, engine: Engine) -> None:
        try:
            with write_tx(engine) as conn:
                self.result = self.write(conn)
        except Exception as exc:
            self.error = exc


class OrderOutbox:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine, self._clock = engine, clock
        self._writes = _GroupCommit(engine)

    def add(self, row: OutboxRow) -> None:
        """Keep a new forward (committed before this returns): it survives a crash."""
        self._writes.run(lambda conn: self._insert(conn, row))

    @staticmethod
    def _insert(conn: Connection, row: OutboxRow) -> None:
        conn.execute(
            insert(order_outbox).values(
                message_id=row.message_id,
                recipient=row.recipient,
                issuer=row.issuer,
                order_id=row.order_id,
                agent_id=row.agent_id,
                digest=row.digest,
                body=row.body.decode(),
                state="queued",
                attempts=0,
                next_attempt=row.next_attempt,
                created_at=row.created_at,
            )
        )

    def get(self, message_id: str) -> OutboxRow:
        with read_tx(self._engine) as conn:
            found = conn.execute(
                select(order_outbox).where(order_outbox.c.message_id == message_id)
            ).first()
        if found is None:
            raise NotFound(f"no forwarded order {message_id} is in this node's outbox")
        return _row(found)

    def rows(self, state: OutboxState | None = None, limit: int = 100) -> list[OutboxRow]:
        """The newest forwards first, optionally only those in ``state``."""
        query = select(order_outbox).order_by(order_outbox.c.created_at.desc()).limit(limit)
        if state is not None:
            query = query.where(order_outbox.c.state == state)
        with read_tx(self._engine) as conn:
            return [_row(r) for r in conn.execute(query)]

    def due(self, limit: int = 50) -> list[OutboxRow]:
        """Queued forwards whose next attempt is due, oldest first."""
        query = (
            select(order_outbox)
            .where(order_outbox.c.state == "queued")
            .where(order_outbox.c.next_attempt <= self._clock())
            .order_by(order_outbox.c.created_at)
            .limit(limit)
        )
        with read_tx(self._engine) as conn:
            return [_row(r) for r in conn.execute(query)]

    def next_due(self) -> float | None:
        """When the earliest queued forward is due (None: nothing is queued)."""
        query = select(order_outbox.c.next_attempt).where(order_outbox.c.state == "queued")
        with read_tx(self._engine) as conn:
            times = [float(t) for t in conn.execute(query.order_by(order_outbox.c.next_attempt))]
        return times[0] if times else None

    def settle(self, message_id: str, state: OutboxState, status: int, answer: Any) -> bool:
        """Record the home's final answer; False when another attempt settled it first."""
        values = {
            "state": state,
            "answered_at": self._clock(),
            "answer_status": status,
            "answer": orjson.dumps(answer).decode(),
            "last_error": None,
        }
        return bool(self._writes.run(lambda conn: _attempted(conn, message_id, values)))

    def postpone(self, message_id: str, error: str, delay: float) -> None:
        """One more failed attempt: try again after ``delay`` seconds."""
        values = {"next_attempt": self._clock() + delay, "last_error": error[:2000]}
        self._writes.run(lambda conn: _attempted(conn, message_id, values))


def _attempted(conn: Connection, message_id: str, values: dict[str, Any]) -> bool:
    """Count one attempt at a queued forward and set ``values``; False if not queued."""
    done = conn.execute(
        update(order_outbox)
        .where(order_outbox.c.message_id == message_id)
        .where(order_outbox.c.state == "queued")
        .values(attempts=order_outbox.c.attempts + 1, **values)
    )
    return done.rowcount == 1
