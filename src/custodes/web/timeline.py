"""An agent's decisions timeline for its page: the API's read, without the proofs.

The rows, their order and every access rule are those of ``GET
/api/v1/registry/agents/{id}/decisions`` (``custodes.api.readside.decisions_page``): the
same read index and query, below the newest checkpoint it covers, and the clear record
only through ``node.disclosure.disclose`` with the viewer as reader, which logs each
clear read. What the page leaves out is the inclusion proofs: a person reads the page,
and each row links to ``GET /api/v1/decisions/{index}`` for the entry with its proof.
Computing twenty proofs against a million-entry tree cost more than the page's whole
time budget, for nothing shown.

The cursor is ``<tree size>.<decided_at>.<index>``: later pages read against the same
tree size, as the API's cursor does. ``previous`` is the cursor of the page before (""
for the first page, None on it), found by one backward seek, so a reader pages both ways.
A forged cursor only asks for another position in the same public log (its size is capped
at the newest checkpoint covered).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, and_, or_, select

from custodes.errors import BadRequest, NotFound
from custodes.ledger.readindex import (
    DECISIONS,
    Position,
    decision_index,
    newest_checkpoint_at_most,
    select_decisions,
    select_entries_at,
)
from custodes.store.db import read_tx

if TYPE_CHECKING:
    from custodes.node import Node
    from custodes.registry.principals import Principal

__all__ = ["CURSOR_PATTERN", "decisions_timeline"]

CURSOR_PATTERN = r"^\d{1,19}\.\d{1,19}\.\d{1,19}$"
_READ_BUDGET = 20_000  # as the API: entries indexed before answering


def _open(cursor: str | None, newest: int) -> tuple[int, Position | None]:
    if cursor is None:
        return newest, None
    size, at, index = (int(part) for part in cursor.split("."))
    if size > newest:
        raise BadRequest(
            "the cursor is not one this page gave out; start again without it",
            code="bad_cursor",
        )
    return size, Position(at, index)


def _row(index: int, decision: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    clear = (item.get("clear") or {}).get("record")
    shown = clear if clear is not None else decision
    return {
        "index": index,
        "decided_at": decision.get("decided_at"),
        "kind": decision.get("kind", "decision"),
        "committed": decision.get("v") == 2,
        "action": shown.get("action"),
        "rationale": shown.get("rationale"),
        "counterparties": shown.get("counterparties", []),
        "erased": bool(item.get("erased")),
    }


def _previous(
    conn: Connection, agent_id: str, size: int, first: Position, limit: int
) -> str | None:
    """The cursor of the page before the one starting at ``first``: "" for the first page,
    None when nothing comes before. One backward seek on the (agent, time) index."""
    c = decision_index.c
    before = conn.execute(
        select(c.idx, c.decided_at)
        .where(
            and_(
                c.agent_id == agent_id,
                c.idx < size,
                c.decided_at <= first.decided_at,
                or_(c.decided_at < first.decided_at, c.idx < first.index),
            )
        )
        .order_by(c.decided_at.desc(), c.idx.desc())
        .limit(limit + 1)
    ).all()
    if not before:
        return None
    if len(before) <= limit:
        return ""
    start = before[-1]  # the previous page begins just after this row
    return f"{size}.{int(start.decided_at)}.{int(start.idx)}"


def decisions_timeline(
    node: Node, agent_id: str, cursor: str | None, limit: int, reader: Principal | None
) -> dict[str, Any]:
    """A page of the agent's decisions by (decided_at, index), as ``reader`` may see them."""
    if node.registry.status(agent_id) is None:
        raise NotFound(f"no agent {agent_id} is registered on this node", code="unknown_agent")
    covered = node.read_index.catch_up(DECISIONS.name, budget=_READ_BUDGET)
    with read_tx(node.engine) as conn:
        newest = newest_checkpoint_at_most(conn, covered) or 0
        size, after = _open(cursor, newest)
        found = list(conn.execute(select_decisions(agent_id, size, (None, None), after, limit + 1)))
        page = found[:limit]
        previous = None
        if after is not None and page:
            first = Position(int(page[0].decided_at), int(page[0].idx))
            previous = _previous(conn, agent_id, size, first, limit)
        stored = {
            int(r.idx): bytes(r.data)
            for r in conn.execute(select_entries_at([int(r.idx) for r in page]))
        }
    items = []
    for row in page:
        entry = orjson.loads(stored[int(row.idx)])
        decision = orjson.loads(base64.b64decode(entry["payload"]))
        items.append({"index": int(row.idx), "decision": decision})
    node.disclosure.disclose(reader, items)  # clear where entitled; the read is logged
    following = None
    if len(found) > limit and page:
        following = f"{size}.{int(page[-1].decided_at)}.{int(page[-1].idx)}"
    rows = [_row(i["index"], i["decision"], i) for i in items]
    return {"rows": rows, "next": following, "previous": previous, "tree_size": size}
