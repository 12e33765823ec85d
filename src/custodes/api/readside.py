"""The Black Box read side: pages of logged entries, each with its inclusion proof.

A page answers against one signed checkpoint (``tree_size``, ``checkpoint``): every
item's proof leads to that checkpoint's root. The first page takes the newest checkpoint
the read index covers; its cursor carries that size, so every later page answers against
the same checkpoint and the pages together are one consistent snapshot of the log.
Cursors are opaque to callers (base64url JSON, not signed: a forged one only asks for
another position in the same public log).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Select

from custodes.api.proofs import checkpoint_text
from custodes.errors import BadRequest, NotFound
from custodes.evals.index import EVAL_RESULTS, ResultFilter, select_results
from custodes.ledger import readindex
from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.readindex import (
    DECISIONS,
    Position,
    micros,
    newest_checkpoint_at_most,
    select_decisions,
    select_entries_at,
)
from custodes.node import Node
from custodes.registry.principals import Principal
from custodes.store.db import read_tx

__all__ = ["Window", "decision_item", "decisions_page", "parse_instant", "results_page"]

# Entries a read indexes before answering; past that it answers against the newest
# checkpoint already indexed while the node's background catch-up goes on.
_READ_BUDGET = 20_000


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def parse_instant(name: str, value: str | None) -> int | None:
    """An RFC 3339 instant (with its offset) as microseconds since the epoch."""
    instant = readindex.parse_instant(name, value)
    return None if instant is None else micros(instant)


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in microseconds since the epoch: ``from`` inclusive, ``to`` exclusive."""

    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise BadRequest(
                "from is after to; give from <= to (from is inclusive, to exclusive)",
                code="bad_window",
            )


# --- cursors ---------------------------------------------------------------------------


def _cursor(kind: str, size: int, **position: int) -> str:
    raw = orjson.dumps({"k": kind, "size": size, **position})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_cursor() -> BadRequest:
    return BadRequest(
        "the cursor is not one this endpoint gave out; start again without it",
        code="bad_cursor",
    )


def _open_cursor(
    node: Node, kind: str, cursor: str, fields: Sequence[str], index_name: str
) -> dict[str, int]:
    try:
        opened = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise _bad_cursor() from None
    if not isinstance(opened, dict) or opened.get("k") != kind:
        raise _bad_cursor()
    found = {f: opened.get(f) for f in ("size", *fields)}
    values = {f: v for f, v in found.items() if type(v) is int and 0 <= v < 2**63}
    if len(values) != len(found) or node.store.checkpoint(values["size"]) is None:
        raise _bad_cursor()
    if node.read_index.covered(index_name) < values["size"]:  # an index rebuilt meanwhile
        node.read_index.catch_up(index_name)
    return values


# --- pages -----------------------------------------------------------------------------


def _snapshot(node: Node, index_name: str) -> int:
    """The newest checkpointed size the read index covers, after catching it up."""
    covered = node.read_index.catch_up(index_name, budget=_READ_BUDGET)
    with read_tx(node.engine) as conn:
        return newest_checkpoint_at_most(conn, covered) or 0


def _items(node: Node, conn: Connection, indices: list[int], size: int) -> list[dict[str, Any]]:
    """Each entry at ``indices`` as logged, its payload decoded, its proof against ``size``."""
    rows = {int(r.idx): r for r in conn.execute(select_entries_at(indices))}
    proofs = node.proofs.inclusion(conn, indices, size)
    items = []
    for index, proof in zip(indices, proofs, strict=True):
        row = rows[index]
        entry = orjson.loads(bytes(row.data))
        leaf = bytes(row.leaf_hash)
        items.append(
            {
                "index": index,
                "leaf_hash": leaf.hex(),
                "entry": entry,
                "payload": orjson.loads(base64.b64decode(entry["payload"])),
                "proof": {
                    "index": index,
                    "tree_size": size,
                    "leaf_hash": _b64(leaf),
                    "proof": [_b64(h) for h in proof],
                },
            }
        )
    return items


def _page(
    node: Node, size: int, query: Select[Any], limit: int
) -> tuple[list[dict[str, Any]], Any | None]:
    """The items of one page and, when more follow, the index row of its last item."""
    with read_tx(node.engine) as conn:
        rows = list(conn.execute(query))
        page = rows[:limit]
        items = _items(node, conn, [int(r.idx) for r in page], size)
    return items, page[-1] if len(rows) > limit and page else None


def _answer(
    node: Node, size: int, items: list[dict[str, Any]], cursor: str | None
) -> dict[str, Any]:
    return {
        "items": items,
        "next_cursor": cursor,
        "tree_size": size,
        "checkpoint": checkpoint_text(node, size) if size else None,
    }


def decisions_page(
    node: Node,
    agent_id: str,
    window: Window,
    cursor: str | None,
    limit: int,
    reader: Principal | None = None,
) -> dict[str, Any]:
    """An agent's decisions in ``window`` by (decided_at, index), ``limit`` at a time:
    committed ones in clear where ``reader`` is entitled (one access entry per page)."""
    if node.registry.status(agent_id) is None:
        raise NotFound(f"no agent {agent_id} is registered on this node", code="unknown_agent")
    after = None
    if cursor is None:
        size = _snapshot(node, DECISIONS.name)
    else:
        opened = _open_cursor(node, "d", cursor, ("at", "index"), DECISIONS.name)
        size, after = opened["size"], Position(opened["at"], opened["index"])
    query = select_decisions(agent_id, size, (window.start, window.end), after, limit + 1)
    items, last = _page(node, size, query, limit)
    for item in items:
        item["decision"] = item.pop("payload")
    node.disclosure.disclose(reader, items)
    following = None
    if last is not None:
        following = _cursor("d", size, at=int(last.decided_at), index=int(last.idx))
    return _answer(node, size, items, following)


def decision_item(node: Node, index: int, reader: Principal | None) -> dict[str, Any]:
    """One logged decision as the read side shows it to ``reader``, with its inclusion
    proof against the newest checkpoint (``proof`` None while it is not yet integrated)."""
    with read_tx(node.engine) as conn:
        size, _ = node.store.tree_size(conn)
        rows = list(conn.execute(select_entries_at([index])))
        if not rows or rows[0].payload_type != DECISION_TYPE:
            raise NotFound(f"no decision is logged at index {index}", code="decision_not_found")
        if index < size:
            item = _items(node, conn, [index], size)[0]
        else:
            entry = orjson.loads(bytes(rows[0].data))
            payload = orjson.loads(base64.b64decode(entry["payload"]))
            item = {"index": index, "entry": entry, "payload": payload, "proof": None}
    item["decision"] = item.pop("payload")
    for erased in node.disclosure.disclose(reader, [item]):
        raise erased  # an entitled reader asked for this record: it is gone (410)
    answer = _answer(node, size, [item], None)
    return {**answer.pop("items")[0], "tree_size": size, "checkpoint": answer["checkpoint"]}


def results_page(node: Node, where: ResultFilter, cursor: str | None, limit: int) -> dict[str, Any]:
    """Published evaluation results matching ``where``, in log order."""
    after = None
    if cursor is None:
        size = _snapshot(node, EVAL_RESULTS.name)
    else:
        opened = _open_cursor(node, "r", cursor, ("index",), EVAL_RESULTS.name)
        size, after = opened["size"], opened["index"]
    items, last = _page(node, size, select_results(where, size, after, limit + 1), limit)
    for item in items:
        item["record"] = item.pop("payload")
    following = None if last is None else _cursor("r", size, index=int(last.idx))
    return _answer(node, size, items, following)
