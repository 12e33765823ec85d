"""Group commit for kill orders: a burst of orders shares one sequencing transaction.

An order is projected inside the transaction that sequences it (its authority check and
its effect on the registry cannot be separated by another write), so the sequencer
commits each projected entry alone. Under a burst — a regulator's tooling sending 100
orders at once — that is 100 durable commits one after another. Here, as the lease
nonces and the sequencer do, the orders arriving while one commit runs wait and the next
of them commits them all: one transaction, consecutive indices, each order projected in
turn so it sees the ones before it, exactly as a replay will.

Each order keeps its own validation and its own answer. When one order's projection
refuses (an unknown agent, a missing authority), the transaction rolls back, that order
gets its error and the others are committed again without it. When the group fails for
any other reason (the store, an entry already logged), each order is committed alone, as
before, and gets its own outcome.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from custodes.errors import BadRequest
from custodes.ledger.dsse import Envelope
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.service import LogService
from custodes.ledger.store import SequencedEntry
from custodes.registry.selectors import Covered

__all__ = ["OrderBatcher", "OrderProjector"]

OrderProjector = Callable[[Connection, int], Covered]
_GROUP = 256  # orders per transaction at most


@dataclass
class _Order:
    envelope: Envelope
    project: OrderProjector
    done: threading.Event = field(default_factory=threading.Event)
    index: int = -1
    covered: Covered = field(default_factory=list)
    error: BaseException | None = None


class _Refused(Exception):
    """One order's projection refused inside a group: retry the group without it."""

    def __init__(self, item: _Order, error: BaseException) -> None:
        super().__init__(str(error))
        self.item, self.error = item, error


def _own_error(exc: BaseException) -> BaseException:
    if isinstance(exc, ValueError):  # content the projection cannot apply: the caller's
        return BadRequest(f"the entry cannot be applied: {exc}", code="invalid_change")
    return exc


class OrderBatcher:
    def __init__(self, log: LogService, *, max_group: int = _GROUP) -> None:
        self._log, self._max_group = log, max_group
        self._queue: deque[_Order] = deque()
        self._cond = threading.Condition()
        self._committing = False

    def submit(self, envelope: Envelope, project: OrderProjector) -> tuple[int, Covered]:
        """Sequence ``envelope`` with its projection; its index and the agents it covers."""
        item = _Order(envelope, project)
        with self._cond:
            self._queue.append(item)
        while not item.done.is_set():
            group = self._lead_or_wait(item)
            if group:
                self._commit_and_hand_over(group)
        if item.error is not None:
            raise item.error
        return item.index, item.covered

    def _lead_or_wait(self, item: _Order) -> list[_Order]:
        with self._cond:
            while self._committing and not item.done.is_set():
                self._cond.wait()
            if item.done.is_set():
                return []
            self._committing = True
            return [self._queue.popleft() for _ in range(min(self._max_group, len(self._queue)))]

    def _commit_and_hand_over(self, group: list[_Order]) -> None:
        try:
            self._commit(group)
        finally:
            for item in group:
                item.done.set()
            with self._cond:
                self._committing = False
                self._cond.notify_all()

    def _commit(self, group: list[_Order]) -> None:
        pending = list(group)
        while len(pending) > 1:
            try:
                self._together(pending)
                return
            except _Refused as refused:
                refused.item.error = _own_error(refused.error)
                pending.remove(refused.item)
            except Exception:  # not one order's fault: each is committed alone below
                break
        for item in pending:
            self._alone(item)

    def _together(self, items: list[_Order]) -> None:
        def project(conn: Connection, first: int) -> None:
            for offset, item in enumerate(items):
                try:
                    item.covered = item.project(conn, first + offset)
                except Exception as exc:
                    raise _Refused(item, exc) from exc

        self._log.alarm.check()
        entries = [_entry(item.envelope) for item in items]
        indices = self._log.sequencer.submit(entries, project)
        for item, index in zip(items, indices, strict=True):
            item.index = index

    def _alone(self, item: _Order) -> None:
        def project(conn: Connection, index: int) -> None:
            item.covered = item.project(conn, index)

        try:
            item.index = self._log.append_own(item.envelope, project)
        except Exception as exc:
            item.error = exc


def _entry(envelope: Envelope) -> SequencedEntry:
    data = envelope.to_bytes()
    return SequencedEntry(data, leaf_hash(data), envelope.payload_type)
