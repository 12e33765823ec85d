"""Every hot query uses an index, on SQLite and on PostgreSQL.

Each case runs one hot operation of a node the way it runs in production (sequencing a
batch with idempotency keys, a lease renewal, the registry status checked per append, a
token look-up, proofs by leaf hash, entry and tile reads, integration, the read side's
pages and index catch-up), records every
statement the code sends to the database, and asks the database for its plan: a full
table scan ("SCAN <table>" in SQLite, "Seq Scan" in PostgreSQL with sequential scans
discouraged) fails. Without an index such a query slows every append as the log grows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

from custodes.evals.index import ResultFilter, select_results
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.readindex import (
    Position,
    newest_checkpoint_at_most,
    select_decisions,
    select_entries_at,
)
from custodes.ledger.store import SequencedEntry
from custodes.node import Node
from custodes.sdk import sign_decision
from custodes.sdk.leases import lease_request
from custodes.store.db import metadata, read_tx
from tests.enrol import enrol

# Tables of one row by design (the log's and the tree's state): a scan reads that row.
_ONE_ROW = {"log_state", "tree_state"}
_TABLES = set(metadata.tables) - _ONE_ROW
_SQL = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")

Statement = tuple[str, Any]


@contextmanager
def issued(engine: Engine) -> Iterator[list[Statement]]:
    """Every statement ``engine`` sends while the block runs, with its parameters."""
    seen: list[Statement] = []

    def record(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith(_SQL):
            seen.append((sql, params[0] if many else params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _sqlite_scans(engine: Engine, sql: str, params: Any) -> list[str]:
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
    return [
        row.detail
        for row in plan
        if (m := re.match(r"SCAN (\w+)", row.detail)) and " INDEX " not in row.detail
        if m.group(1) in _TABLES
    ]


def _postgres_scans(engine: Engine, sql: str, params: Any) -> list[str]:
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")  # a tiny table must not excuse it
        plan = conn.exec_driver_sql(f"EXPLAIN {sql}", params).scalars().all()
        conn.rollback()
    return [
        line.strip()
        for line in plan
        if (m := re.search(r"Seq Scan on (\w+)", line)) and m.group(1) in _TABLES
    ]


def full_scans(engine: Engine, statements: list[Statement]) -> list[tuple[str, list[str]]]:
    scans = _sqlite_scans if engine.dialect.name == "sqlite" else _postgres_scans
    found = [(sql, scans(engine, sql, params)) for sql, params in statements]
    return [(sql, plan) for sql, plan in found if plan]


# --- the hot operations --------------------------------------------------------------------


def _decisions(key: EnvelopeSigner, agent: str, tag: str, count: int) -> list[SequencedEntry]:
    out = []
    for n in range(count):
        envelope = sign_decision(
            key, agent, f"{tag} #{n}", rationale="within mandate", idempotency_key=f"{tag}-{n}"
        )
        data = canonical_dumps(envelope.to_json())
        out.append(
            SequencedEntry(data, leaf_hash(data), envelope.payload_type, (agent, f"{tag}-{n}"))
        )
    return out


def _sequence(node: Node, key: EnvelopeSigner, agent: str) -> None:
    """The sequencer's transaction: several callers, two or more keys each, retries."""
    first, second = _decisions(key, agent, "a", 3), _decisions(key, agent, "b", 2)
    node.store.sequence_group([first, second])
    node.store.sequence_group([first[:2], _decisions(key, agent, "c", 4)])


def _lease(node: Node, key: EnvelopeSigner, agent: str) -> None:
    for _ in range(3):
        node.leases.issue(lease_request(key, agent, time.time()).to_json())


def _status(node: Node, _key: EnvelopeSigner, agent: str) -> None:
    node.registry.status(agent)
    node.registry.status("urn:custodes:zz:agent:nobody")


def _token(node: Node, _key: EnvelopeSigner, _agent: str) -> None:
    token = node.tokens.issue("operator:acme", None, 60)
    node.tokens.authenticate(str(token["token"]))


def _proof_by_leaf(node: Node, _key: EnvelopeSigner, _agent: str) -> None:
    with read_tx(node.engine) as conn:
        leaf = node.store.leaf_hashes(conn, 3, 4)[0]
    node.log.inclusion(leaf=leaf)


def _reads(node: Node, _key: EnvelopeSigner, _agent: str) -> None:
    with read_tx(node.engine) as conn:
        node.store.entry_data(conn, 2, 5)
        node.store.tile_hashes(conn, 0, 0, 256)
        node.store.tile_hashes(conn, 1, 0, 1)
        node.store.index_of(conn, b"\0" * 32)


def _integrate(node: Node, key: EnvelopeSigner, agent: str) -> None:
    node.store.sequence(_decisions(key, agent, "i", 300))
    node.log.integrate()


def _decisions_by_time(node: Node, _key: EnvelopeSigner, agent: str) -> None:
    size = node.read_index.catch_up("decisions")
    window = (0, 2**62)
    with read_tx(node.engine) as conn:
        first = conn.execute(select_decisions(agent, size, window, None, 10)).all()
        after = Position(int(first[-1].decided_at), int(first[-1].idx))
        conn.execute(select_decisions(agent, size, window, after, 10)).all()
        conn.execute(select_entries_at([int(r.idx) for r in first])).all()
        newest_checkpoint_at_most(conn, size)


def _read_index_catch_up(node: Node, key: EnvelopeSigner, agent: str) -> None:
    node.store.sequence(_decisions(key, agent, "x", 20))
    node.log.integrate()
    node.read_index.catch_up_all()


def _eval_results(node: Node, _key: EnvelopeSigner, agent: str) -> None:
    with read_tx(node.engine) as conn:
        for where in (ResultFilter(agent_id=agent), ResultFilter(suite="core-1", since=0)):
            conn.execute(select_results(where, 10**6, 3, 10)).all()


HOT: dict[str, Callable[[Node, EnvelopeSigner, str], None]] = {
    "sequence": _sequence,
    "lease-renewal": _lease,
    "registry-status": _status,
    "token": _token,
    "proof-by-leaf-hash": _proof_by_leaf,
    "entry-and-tile-reads": _reads,
    "integration": _integrate,
    "decisions-by-time": _decisions_by_time,
    "read-index-catch-up": _read_index_catch_up,
    "eval-results-list": _eval_results,
}
# A table each operation must have queried: proof that the recording saw its statements.
TOUCHES = {
    "sequence": "idempotency",
    "lease-renewal": "lease_nonces",
    "registry-status": "agents",
    "token": "api_tokens",
    "proof-by-leaf-hash": "entries",
    "entry-and-tile-reads": "tree_tiles",
    "integration": "tree_tiles",
    "decisions-by-time": "decision_index",
    "read-index-catch-up": "read_index_state",
    "eval-results-list": "eval_index",
}


@pytest.mark.parametrize("operation", list(HOT))
def test_hot_queries_use_an_index(node: Node, agent: EnvelopeSigner, operation: str) -> None:
    agent_id = enrol(node, agent)
    node.store.sequence(_decisions(agent, agent_id, "prefill", 300))
    node.log.integrate()

    with issued(node.engine) as statements:
        HOT[operation](node, agent, agent_id)

    assert any(TOUCHES[operation] in sql for sql, _ in statements), statements
    assert full_scans(node.engine, statements) == []
