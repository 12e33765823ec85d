"""Sequencer: group commit with a bound, as Tessera's append lifecycle does.

Concurrent appends wait in a bounded queue; one thread drains it and gives many
requests' entries their indices in a single durable transaction. Each caller returns
only after that commit, so an acknowledged index is never lost. Each caller gets its own
outcome: a replayed entry refuses its caller's batch (``DuplicateEntry``, 409) and
leaves the rest of the group to commit. When more than
``max_pending`` entries are waiting, new appends are refused with ``Overloaded``
(HTTP 503 with Retry-After) instead of queueing without bound.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from custodes.errors import BadRequest, CustodesError, Overloaded
from custodes.ledger.store import Projector, SequencedEntry, SqlLogStore

__all__ = ["Sequencer"]


@dataclass
class _Pending:
    batch: Sequence[SequencedEntry]
    project: Projector | None
    done: threading.Event = field(default_factory=threading.Event)
    indices: list[int] = field(default_factory=list)
    error: BaseException | None = None


class Sequencer:
    def __init__(
        self,
        store: SqlLogStore,
        *,
        max_pending: int,
        max_group: int = 4096,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._max_pending = max_pending
        self._max_group = max_group
        self._on_commit = on_commit
        self._queue: deque[_Pending] = deque()
        self._pending = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sequencer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():  # a node opened but never started has no thread
            self._thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    @property
    def pending(self) -> int:
        return self._pending

    def submit(
        self, batch: Sequence[SequencedEntry], project: Projector | None = None
    ) -> list[int]:
        """Sequence ``batch`` durably; return each entry's index (blocks until committed)."""
        item = _Pending(batch, project)
        with self._cond:
            if self._stopping:
                raise Overloaded("the node is shutting down; retry against it later")
            if self._pending + len(batch) > self._max_pending:
                raise Overloaded(
                    f"{self._pending} entries are waiting to be sequenced; retry shortly"
                )
            self._pending += len(batch)
            self._queue.append(item)
            self._cond.notify()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.indices

    def _take_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        count = 0
        while self._queue and count < self._max_group:
            head = self._queue[0]
            # An entry with a projection commits alone, so a failing projection cannot
            # take other callers' entries down with it.
            if group and (head.project is not None or group[0].project is not None):
                break
            group.append(self._queue.popleft())
            count += len(head.batch)
        return group

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._queue:
                    return
                group = self._take_group()
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        try:
            outcomes = self._store.sequence_group([item.batch for item in group], group[0].project)
        except CustodesError as exc:  # store failures arrive here already as StoreError
            self._finish(group, error=exc)
            return
        except ValueError as exc:
            # A projection refused the change's content (bad base64, a field out of
            # range): the caller's input, not the store, so never a 503 "retry".
            refused = BadRequest(f"the entry cannot be applied: {exc}", code="invalid_change")
            self._finish(group, error=refused)
            return
        except Exception as exc:  # a bug: re-raised in the caller's thread, logged there
            self._finish(group, error=exc)
            return
        for item, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, list):
                item.indices = outcome
            else:
                item.error = outcome  # a replay refuses its own batch, not the group's
        self._finish(group)
        if any(isinstance(outcome, list) for outcome in outcomes):
            self._on_commit()

    def _finish(self, group: list[_Pending], error: BaseException | None = None) -> None:
        with self._cond:
            for item in group:
                self._pending -= len(item.batch)
        for item in group:
            item.error = item.error or error
            item.done.set()
