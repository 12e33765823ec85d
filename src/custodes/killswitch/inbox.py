"""OrderInbox: kill orders forwarded by other members' nodes take effect exactly once.

Each forward carries the sender's message id (its Idempotency-Key) and the digest of what
was sent. ``(sender, message_id)`` is unique here and its row is written in the same
transaction that logs the order (the order's projection), so the order and "this message
was handled" commit or roll back together. A retry of a message already handled answers
what the first did (no second entry); the same id with another digest is refused (422);
a retry while the first is still being handled here is told to come back (409), as the
Idempotency-Key draft asks (docs/design/0026).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from custodes.errors import BadRequest
from custodes.ledger.dsse import Envelope
from custodes.registry.principals import Principal
from custodes.registry.service import IssuedOrder, RegistryService
from custodes.store.db import metadata, read_tx

__all__ = ["InboxAnswer", "OrderInbox", "order_inbox"]

order_inbox = Table(
    "order_inbox",
    metadata,
    Column("sender", String(2), primary_key=True),
    Column("message_id", String(36), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("entry_index", BigInteger, nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
)


@dataclass(frozen=True)
class InboxAnswer:
    """What a forward did: the order's log index and id; ``replayed`` when an earlier
    delivery of the same message did it."""

    index: int
    order_id: str
    replayed: bool


class OrderInbox:
    def __init__(
        self, engine: Engine, registry: RegistryService, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine, self._registry, self._clock = engine, registry, clock
        self._lock = threading.Lock()
        self._in_flight: set[tuple[str, str]] = set()

    def receive(
        self, sender: str, message_id: str, digest: str, order: Envelope, issuer: Principal
    ) -> InboxAnswer:
        """Log ``order`` (already verified as ``issuer``'s) once for this message."""
        known = self.answered(sender, message_id, digest)
        if known is not None:
            return known
        key = (sender, message_id)
        with self._lock:
            if key in self._in_flight:
                raise _in_flight(message_id)
            self._in_flight.add(key)
        try:
            issued = self._registry.issue_verified_order(
                order, issuer, also=self._keep(sender, message_id, digest)
            )
        except Exception as exc:
            # Another worker may have logged this message first (its inbox row, or the
            # order itself, committed while we waited for the log): then the refusal we
            # got (a key clash, "order exists", "already in the log") is no refusal, and
            # we answer as it did. Otherwise the refusal stands.
            known = self.answered(sender, message_id, digest)
            if known is not None:
                return known
            if isinstance(exc, IntegrityError):
                raise _in_flight(message_id) from exc
            raise
        finally:
            with self._lock:
                self._in_flight.discard(key)
        return _answer(issued)

    def _keep(
        self, sender: str, message_id: str, digest: str
    ) -> Callable[[Connection, int, str], None]:
        def keep(conn: Connection, index: int, order_id: str) -> None:
            conn.execute(
                insert(order_inbox).values(
                    sender=sender,
                    message_id=message_id,
                    digest=digest,
                    entry_index=index,
                    order_id=order_id,
                    received_at=self._clock(),
                )
            )

        return keep

    def answered(self, sender: str, message_id: str, digest: str) -> InboxAnswer | None:
        with read_tx(self._engine) as conn:
            found = conn.execute(
                select(order_inbox).where(
                    order_inbox.c.sender == sender, order_inbox.c.message_id == message_id
                )
            ).first()
        if found is None:
            return None
        if found.digest != digest:
            raise BadRequest(
                f"Idempotency-Key {message_id} was already used by {sender} for a different "
                "forwarded order; send a new order under a new key",
                code="idempotency_key_reused",
                status=422,
                detail={"message_id": message_id, "index": int(found.entry_index)},
            )
        return InboxAnswer(int(found.entry_index), found.order_id, replayed=True)


def _answer(issued: IssuedOrder) -> InboxAnswer:
    return InboxAnswer(issued.index, issued.order.order_id, replayed=False)


def _in_flight(message_id: str) -> BadRequest:
    return BadRequest(
        f"the forwarded order {message_id} is being handled now; retry in a moment to "
        "receive its answer",
        code="in_flight",
        status=409,
        detail={"message_id": message_id},
    )
