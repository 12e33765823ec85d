"""OrderFanout: every kill order reaches this worker's subscribers, whichever worker logged it.

With several API workers, a subscriber's stream lives in one worker and the order may be
issued through another. The issuing worker pushes to its own subscribers at once and
rings the others (``ORDERS_CHANNEL``, the order's log index); each of them reads the
entry from the database and pushes it to theirs. The database, not the notification,
is the record: at every resync (after the listener (re)connects, and periodically) a
worker pushes every order logged since the last one it knows of, so an order whose
notification was lost still arrives. Each order is pushed once per worker; a stream
opened meanwhile may also have it in its snapshot of active orders (guards act on an
order once, by its id).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Engine, select

from custodes.killswitch.broadcast import OrderBroadcaster
from custodes.ledger.store import entries, log_state
from custodes.registry.models import KillOrder
from custodes.registry.selectors import Covered, covered_by
from custodes.registry.service import ORDER_TYPE
from custodes.store.db import read_tx
from custodes.store.notify import Bus

__all__ = ["ORDERS_CHANNEL", "OrderFanout", "order_event"]

ORDERS_CHANNEL = "custodes_orders"


def order_event(index: int, order: KillOrder, envelope: dict[str, Any]) -> dict[str, Any]:
    """The stream event for the order logged at ``index`` (see ``api.killswitch``)."""
    # An order naming one agent is pushed as before selectors existed.
    dumped = order.model_dump(mode="json", exclude=set() if order.selector else {"selector"})
    return {"index": index, "order": dumped, "envelope": envelope}


class OrderFanout:
    """Pushes orders to local subscribers: this worker's at once, the others' via the bus.

    ``changed(agent_id)`` runs for each order another worker logged, before the push, so
    caches of the agent's status are dropped here too.
    """

    def __init__(
        self,
        broadcaster: OrderBroadcaster,
        engine: Engine,
        bus: Bus,
        changed: Callable[[str], None] = lambda _agent: None,
    ) -> None:
        self._broadcaster, self._engine, self._bus = broadcaster, engine, bus
        self._changed = changed
        self._lock = threading.Lock()
        self._floor: int | None = None  # every order below this index has been pushed
        self._pushed: set[int] = set()  # orders at or above the floor already pushed
        bus.on(ORDERS_CHANNEL, lambda message: self._deliver([int(message["index"])]))
        bus.on_resync(self.resync)

    def publish(
        self, index: int, order: KillOrder, envelope: dict[str, Any], covered: Covered
    ) -> None:
        """An order this worker logged, covering ``covered`` (agent, operator): push it
        here, then tell the other workers (only the index: a selector order's agents can
        exceed what a notification carries; they read them back from the database)."""
        if not self._claim(index):
            return
        self._broadcaster.publish_covering(covered, order_event(index, order, envelope))
        self._bus.tell(ORDERS_CHANNEL, {"index": index})

    def resync(self) -> None:
        """Push every order logged since the floor that this worker has not pushed."""
        with read_tx(self._engine) as conn:
            sequenced = int(conn.execute(select(log_state.c.sequenced)).scalar_one())
            floor = sequenced if self._floor is None else self._floor
            found = conn.execute(
                select(entries.c.idx).where(
                    entries.c.idx >= floor,
                    entries.c.idx < sequenced,
                    entries.c.payload_type == ORDER_TYPE,
                )
            ).scalars()
            indices = [int(i) for i in found]
        self._deliver(indices)
        with self._lock:  # all below ``sequenced`` is pushed now
            self._floor = max(floor, sequenced)
            self._pushed = {i for i in self._pushed if i >= self._floor}

    def _claim(self, index: int) -> bool:
        """Mark ``index`` pushed; False if it was already (or is below the floor)."""
        with self._lock:
            if self._done(index):
                return False
            self._pushed.add(index)
            return True

    def _done(self, index: int) -> bool:  # under the lock
        return (self._floor is not None and index < self._floor) or index in self._pushed

    def _pushed_already(self, index: int) -> bool:
        with self._lock:
            return self._done(index)

    def _deliver(self, indices: list[int]) -> None:
        """Push orders another worker logged (runs on the bus's listener thread)."""
        for index in sorted(indices):
            if self._pushed_already(index):
                continue
            with read_tx(self._engine) as conn:
                rows = conn.execute(select(entries.c.data).where(entries.c.idx == index)).all()
                if not rows:
                    continue
                envelope = orjson.loads(rows[0].data)
                order = KillOrder.model_validate_json(base64.b64decode(envelope["payload"]))
                covered = covered_by(conn, order)
            if not self._claim(index):
                continue
            for agent, _operator in covered:
                self._changed(agent)
            self._broadcaster.publish_covering(covered, order_event(index, order, envelope))
