"""One halt record per revocation: has a revoked agent already recorded its halt?

A revoked agent may still log that it halted (the evidence forensics needs), but only
once per revocation; otherwise a revoked key could fill the log. Decisions are not
projected into the registry, so the answer is read from the log itself: the decision
entries sequenced after the revocation order, scanned once and remembered per
(agent, revocation), so each later question reads only the entries added since.
"""

from __future__ import annotations

import base64
import threading

import orjson
from sqlalchemy import Connection, Engine, func, select

from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.store import entries
from custodes.registry.selectors import covering
from custodes.registry.store import kill_orders
from custodes.store.db import read_tx

__all__ = ["HaltRecords"]

_CHUNK = 2_000


class HaltRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        # (agent, revocation index) -> (next index to scan, index of its halt or None)
        self._seen: dict[tuple[str, int], tuple[int, int | None]] = {}

    def since_revocation(self, agent_id: str) -> int | None:
        """The index of the halt ``agent_id`` recorded after its revocation, if any."""
        with read_tx(self._engine) as conn:
            revoked = _revocation_index(conn, agent_id)
            if revoked is None:
                return None
            with self._lock:
                start, found = self._seen.get((agent_id, revoked), (revoked + 1, None))
            while found is None:
                chunk = _decisions(conn, start)
                if not chunk:
                    break
                found = next((i for i, data in chunk if _is_halt(data, agent_id)), None)
                start = chunk[-1][0] + 1
        with self._lock:
            self._seen[(agent_id, revoked)] = (start, found)
        return found


def _revocation_index(conn: Connection, agent_id: str) -> int | None:
    index = conn.execute(
        select(func.max(kill_orders.c.issued_index)).where(
            covering(agent_id),  # a revocation by selector counts as one naming it
            kill_orders.c.op == "revoke",
            kill_orders.c.scope == "global",
            kill_orders.c.status == "active",
        )
    ).scalar_one_or_none()
    return None if index is None else int(index)


def _decisions(conn: Connection, start: int) -> list[tuple[int, bytes]]:
    rows = conn.execute(
        select(entries.c.idx, entries.c.data)
        .where(entries.c.idx >= start, entries.c.payload_type == DECISION_TYPE)
        .order_by(entries.c.idx)
        .limit(_CHUNK)
    ).all()
    return [(int(r.idx), bytes(r.data)) for r in rows]


def _is_halt(data: bytes, agent_id: str) -> bool:
    try:
        payload = orjson.loads(base64.b64decode(orjson.loads(data)["payload"]))
    except (ValueError, KeyError, TypeError):
        return False  # not ours to judge here: the audit names corrupt entries
    if not isinstance(payload, dict):
        return False
    # A plain (version 1) record says "halt" as its action, a committed one as its kind.
    kind = payload.get("kind") if payload.get("v") == 2 else payload.get("action")
    return bool(payload.get("agent") == agent_id and kind == "halt")
