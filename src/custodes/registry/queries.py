"""Registry reads: current or ``as_of`` a log index, filtered, paginated, public or full.

Every record answer names the entry that set it (``entry_index``) so a caller can ask
for its inclusion proof; ``as_of`` answers come with that proof already. Every read names
its ``reader`` (a principal, None for the public, or ``NODE`` in-process): what it sees
follows the read columns of the authority table, and private fields are opened only for
the principals entitled to them (docs/design/0008-private-fields.md).
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Engine, Select, and_, func, or_, select

from custodes.errors import BadRequest, NotFound
from custodes.ledger.service import Proof
from custodes.ledger.store import log_state, signers
from custodes.registry import relations
from custodes.registry.authority import Action, Relation, decide
from custodes.registry.models import AgentRecord
from custodes.registry.principals import Principal
from custodes.registry.selectors import covering, targets_of
from custodes.registry.store import (
    agent_jurisdictions,
    agent_skills,
    agents,
    key_events,
    kill_order_agents,
    kill_orders,
    models,
    operators,
    private_fields,
    record_versions,
)
from custodes.store.db import read_tx

__all__ = [
    "NODE",
    "PUBLIC_AGENT_FIELDS",
    "PUBLIC_OPERATOR_FIELDS",
    "AgentFilter",
    "ProofCache",
    "RegistryQueries",
]


class _Node(Enum):
    NODE = "node"


NODE: Final = _Node.NODE
"""The node itself as a reader: everything, private fields included (in-process use)."""
Reader = Principal | None | _Node

# What the public may see of an agent; contacts, aliases, interfaces, model and keys
# are for regulators, auditors and the operator.
PUBLIC_AGENT_FIELDS = frozenset(
    {
        "id",
        "name",
        "version",
        "operator",
        "home_jurisdiction",
        "operating_jurisdictions",
        "sector",
        "risk_tier",
        "autonomy_level",
        "intended_purpose",
        "skills",
    }
)
PUBLIC_OPERATOR_FIELDS = frozenset({"id", "legal_name", "kind", "jurisdiction"})
MAX_PAGE = 200
MAX_INDEX = 2**63 - 1  # log indices are signed 64-bit integers in the database


def _may(reader: Reader, relation: Relation, action: Action, territory: str | None = None) -> bool:
    if reader is NODE:
        return True
    if reader is None or not reader.can("read:private"):
        return False
    where = reader.jurisdiction
    return decide(relation, action, territory=territory, principal_jurisdiction=where).allowed


def _agent_view(reader: Reader, record: dict[str, Any]) -> tuple[bool, bool]:
    """(full record, private fields) that ``reader`` may see of an agent (authority table)."""
    if reader is NODE:
        return True, True
    agent = AgentRecord.model_validate(record)
    relation = relations.to_agent(reader, agent)
    operating = reader is not None and reader.jurisdiction in agent.operating_jurisdictions
    territory = reader.jurisdiction if operating and reader is not None else None
    return (
        _may(reader, relation, "agent.read"),
        _may(reader, relation, "agent.read.private", territory),
    )


def _check_as_of(as_of: int | None) -> None:
    if as_of is not None and not 0 <= as_of <= MAX_INDEX:
        raise BadRequest(
            f"as_of is a log index, from 0 to {MAX_INDEX}", code="bad_as_of", status=422
        )


def _check_in_tree(conn: Connection, as_of: int | None) -> None:
    """Refuse an ``as_of`` past the log's end: no state there yet, and answering the
    current one would claim a history the log does not have (yet). Sequenced entries
    count: their projection is committed with them, their proof follows shortly."""
    if as_of is None:
        return
    size = int(conn.execute(select(log_state.c.sequenced)).scalar_one())
    if as_of >= size:
        raise BadRequest(
            f"as-of {as_of} is beyond the log's size {size}; ask for an index below {size}",
            code="as_of_beyond_log",
            detail={"as_of": as_of, "size": size},
        )


def _opened(conn: Connection, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the clear text behind its commitment, where it is still kept."""
    commitment = record.get("private")
    if commitment is None:
        return record
    row = conn.execute(
        select(private_fields.c.fields).where(private_fields.c.commitment == commitment)
    ).first()
    return record if row is None else {**record, **orjson.loads(row.fields)}


@dataclass(frozen=True)
class AgentFilter:
    jurisdiction: str | None = None
    sector: str | None = None
    status: str | None = None
    operator: str | None = None
    skill: str | None = None


def status_at(conn: Connection, agent_id: str, index: int | None) -> dict[str, Any]:
    query = select(kill_orders).where(covering(agent_id), kill_orders.c.op != "reinstate")
    if index is not None:
        query = query.where(
            kill_orders.c.issued_index <= index,
            or_(kill_orders.c.lifted_index.is_(None), kill_orders.c.lifted_index > index),
        )
    else:
        query = query.where(kill_orders.c.status == "active")
    active = conn.execute(query.order_by(kill_orders.c.issued_index)).all()
    global_orders = [r for r in active if r.scope == "global"]
    status = (
        "revoked"
        if any(r.op == "revoke" for r in global_orders)
        else "suspended"
        if global_orders
        else "active"
    )
    territories = {r.territory for r in active if r.scope == "territorial"}
    return {
        "status": status,
        # "*": everywhere (a global suspension or revocation), beside any territory named
        "suspended_in": sorted(territories | ({"*"} if global_orders else set())),
        "orders": [
            {
                "order_id": r.order_id,
                "op": r.op,
                "scope": r.scope,
                "territory": r.territory,
                "reason": r.reason,
                "authority": r.authority,
                "entry_index": r.issued_index,
            }
            for r in active
        ],
    }


class RegistryQueries:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def agent(self, agent_id: str, *, as_of: int | None = None, reader: Reader) -> dict[str, Any]:
        """An agent as ``reader`` may see it: public, full, or full with private fields."""
        _check_as_of(as_of)
        with read_tx(self._engine) as conn:
            _check_in_tree(conn, as_of)
            record, index = self._version(conn, "agent", agent_id, as_of)
            full, private = _agent_view(reader, record)
            status = status_at(conn, agent_id, as_of)
            keys = self._keys(conn, agent_id, as_of) if full else []
            if private:
                record = _opened(conn, record)
        if not full:
            record = {k: v for k, v in record.items() if k in PUBLIC_AGENT_FIELDS}
            status = {"status": status["status"], "suspended_in": status["suspended_in"]}
        return {"record": record, **status, "keys": keys, "entry_index": index, "as_of": as_of}

    def _version(
        self, conn: Connection, kind: str, rid: str, as_of: int | None
    ) -> tuple[dict[str, Any], int]:
        query = select(record_versions.c.record, record_versions.c.entry_index).where(
            record_versions.c.kind == kind, record_versions.c.id == rid
        )
        if as_of is not None:
            query = query.where(record_versions.c.entry_index <= as_of)
        row = conn.execute(query.order_by(record_versions.c.entry_index.desc()).limit(1)).first()
        if row is None:
            when = "" if as_of is None else f" as of log index {as_of}"
            raise NotFound(f"no {kind} {rid} was registered{when}", code=f"unknown_{kind}")
        return orjson.loads(row.record), int(row.entry_index)

    @staticmethod
    def _keys(conn: Connection, agent_id: str, as_of: int | None) -> list[dict[str, Any]]:
        query = select(key_events).where(key_events.c.agent_id == agent_id)
        if as_of is not None:
            query = query.where(key_events.c.entry_index <= as_of)
        events = conn.execute(query.order_by(key_events.c.entry_index)).all()
        history: dict[str, dict[str, Any]] = {}
        for event in events:
            entry = history.setdefault(
                event.keyid,
                {"keyid": event.keyid, "status": "active", "added_index": event.entry_index},
            )
            if event.event == "retired":
                entry.update(status="retired", retired_index=event.entry_index)
        rows = conn.execute(
            select(signers.c.keyid, signers.c.public_key).where(signers.c.keyid.in_(list(history)))
        ).all()
        for row in rows:
            history[row.keyid]["public_key"] = base64.b64encode(row.public_key).decode()
        return list(history.values())

    def agents(
        self,
        where: AgentFilter,
        *,
        limit: int = 50,
        after: str | None = None,
        reader: Reader,
    ) -> dict[str, Any]:
        """A page of agents; each full only where ``reader`` may read it (no private fields)."""
        query = _filtered(where).order_by(agents.c.id).limit(min(max(limit, 1), MAX_PAGE) + 1)
        if after is not None:
            query = query.where(agents.c.id > after)
        with read_tx(self._engine) as conn:
            rows = conn.execute(query).all()
        page = rows[: min(max(limit, 1), MAX_PAGE)]
        items = []
        for row in page:
            record = orjson.loads(row.record)
            if not _agent_view(reader, record)[0]:
                record = {k: v for k, v in record.items() if k in PUBLIC_AGENT_FIELDS}
            items.append({"record": record, "status": row.status, "entry_index": row.entry_index})
        more = len(rows) > len(page)
        return {"items": items, "next": page[-1].id if more and page else None}

    def operator(
        self, operator_id: str, *, as_of: int | None = None, reader: Reader
    ) -> dict[str, Any]:
        """An operator: public, or with its private fields for its home regulator and itself."""
        _check_as_of(as_of)
        with read_tx(self._engine) as conn:
            _check_in_tree(conn, as_of)
            record, index = self._version(conn, "operator", operator_id, as_of)
            relation = relations.to_operator(
                None if reader is NODE else reader, operator_id, record["jurisdiction"]
            )
            if _may(reader, relation, "operator.read.private"):
                record = _opened(conn, record)
            else:
                record = {k: v for k, v in record.items() if k in PUBLIC_OPERATOR_FIELDS}
        return {"record": record, "entry_index": index, "as_of": as_of}

    def operators(self) -> list[dict[str, Any]]:
        with read_tx(self._engine) as conn:
            rows = conn.execute(select(operators).order_by(operators.c.id)).all()
        return [{"record": orjson.loads(r.record), "entry_index": r.entry_index} for r in rows]

    def model(self, model_id: str, *, as_of: int | None = None) -> dict[str, Any]:
        _check_as_of(as_of)
        with read_tx(self._engine) as conn:
            _check_in_tree(conn, as_of)
            record, index = self._version(conn, "model", model_id, as_of)
            held = conn.execute(
                select(models.c.holder, models.c.status).where(models.c.id == model_id)
            ).first()
        answer = {"record": record, "entry_index": index, "as_of": as_of}
        if as_of is None and held is not None:
            answer |= {"holder": held.holder, "status": held.status}
        return answer

    def models(self) -> list[dict[str, Any]]:
        with read_tx(self._engine) as conn:
            rows = conn.execute(select(models).order_by(models.c.id)).all()
        return [
            {
                "record": orjson.loads(r.record),
                "entry_index": r.entry_index,
                "holder": r.holder,
                "status": r.status,
            }
            for r in rows
        ]

    def orders(
        self, agent_id: str | None = None, *, active_only: bool = False
    ) -> list[dict[str, Any]]:
        """Orders, oldest first; for one agent, those naming it and those covering it by
        selector (a selector order's ``selector`` is given, its ``agents`` counted)."""
        query = select(kill_orders).order_by(kill_orders.c.issued_index)
        if agent_id is not None:
            query = query.where(covering(agent_id))
        if active_only:
            query = query.where(kill_orders.c.status == "active")
        with read_tx(self._engine) as conn:
            rows = conn.execute(query).all()
            counts = _covered_counts(conn, [r.order_id for r in rows if r.selector is not None])
        return [_order_row(r, counts) for r in rows]

    def order_agents(self, order_id: str) -> dict[str, Any]:
        """The agents an order covers, as fixed when it was logged."""
        with read_tx(self._engine) as conn:
            found = conn.execute(
                select(kill_orders.c.order_id).where(kill_orders.c.order_id == order_id)
            ).first()
            if found is None:
                raise NotFound(f"no order {order_id} was issued here", code="unknown_order")
            targets = targets_of(conn, order_id)
        return {"order_id": order_id, "agents": [t.agent_id for t in targets]}

    def fleet_orders(self, operator: str) -> list[tuple[dict[str, Any], list[str]]]:
        """The active orders covering any agent of ``operator``, with those agents: what a
        fleet's kill-order stream is sent first (custodes.killswitch.broadcast)."""
        mine = select(agents.c.id).where(agents.c.operator == operator)
        with read_tx(self._engine) as conn:
            direct = conn.execute(
                select(kill_orders.c.order_id, kill_orders.c.agent_id).where(
                    kill_orders.c.status == "active", kill_orders.c.agent_id.in_(mine)
                )
            ).all()
            by_selector = conn.execute(
                select(kill_order_agents.c.order_id, kill_order_agents.c.agent_id)
                .join(kill_orders, kill_orders.c.order_id == kill_order_agents.c.order_id)
                .where(kill_orders.c.status == "active", kill_order_agents.c.agent_id.in_(mine))
                .order_by(kill_order_agents.c.agent_id)
            ).all()
            covered: dict[str, list[str]] = {}
            for row in [*direct, *by_selector]:
                covered.setdefault(str(row.order_id), []).append(str(row.agent_id))
            rows = conn.execute(
                select(kill_orders)
                .where(kill_orders.c.order_id.in_(list(covered)))
                .order_by(kill_orders.c.issued_index)
            ).all()
        return [(_order_row(r, {}), covered[r.order_id]) for r in rows]


def _covered_counts(conn: Connection, order_ids: list[str]) -> dict[str, int]:
    if not order_ids:
        return {}
    rows = conn.execute(
        select(kill_order_agents.c.order_id, func.count())
        .where(kill_order_agents.c.order_id.in_(order_ids))
        .group_by(kill_order_agents.c.order_id)
    ).all()
    return {str(order_id): int(count) for order_id, count in rows}


def _order_row(row: Any, counts: dict[str, int]) -> dict[str, Any]:
    found = dict(row._mapping)
    if found["selector"] is None:
        del found["selector"]  # an order naming one agent reads as it always did
    else:
        found["selector"] = orjson.loads(found["selector"])
        if row.order_id in counts:
            found["agents"] = counts[row.order_id]
    return found


def _filtered(where: AgentFilter) -> Select[Any]:
    query = select(agents)
    conditions: list[Any] = []
    if where.jurisdiction:
        conditions.append(
            agents.c.id.in_(
                select(agent_jurisdictions.c.agent_id).where(
                    agent_jurisdictions.c.jurisdiction == where.jurisdiction
                )
            )
        )
    if where.skill:
        conditions.append(
            agents.c.id.in_(
                select(agent_skills.c.agent_id).where(agent_skills.c.skill == where.skill)
            )
        )
    for column, value in (
        (agents.c.sector, where.sector),
        (agents.c.status, where.status),
        (agents.c.operator, where.operator),
    ):
        if value:
            conditions.append(column == value)
    return query.where(and_(*conditions)) if conditions else query


# -- inclusion proofs for look-ups --------------------------------------------------------

_PROOFS = 65_536  # proofs kept: a few MiB, every agent of a large registry at one size


class ProofCache:
    """Inclusion proofs by (log index, tree size), kept once computed.

    A proof for one index in one tree is fixed forever (the tree is append-only), so a
    cached proof is never stale; a look-up after the next checkpoint asks for a new tree
    size and gets a new proof. Least recently used proofs go first. Every look-up of a
    record answers with its proof, so this saves a read transaction and a walk of the
    tree's tiles on each repeated look-up.
    """

    def __init__(self, compute: Callable[[int, int], Proof], capacity: int = _PROOFS) -> None:
        self._compute, self._capacity = compute, capacity
        self._proofs: OrderedDict[tuple[int, int], Proof] = OrderedDict()
        self._lock = threading.Lock()

    def inclusion(self, index: int, size: int) -> Proof:
        key = (index, size)
        with self._lock:
            found = self._proofs.get(key)
            if found is not None:
                self._proofs.move_to_end(key)
                return found
        proof = self._compute(index, size)
        with self._lock:
            self._proofs[key] = proof
            if len(self._proofs) > self._capacity:
                self._proofs.popitem(last=False)
        return proof

    def __len__(self) -> int:
        with self._lock:
            return len(self._proofs)
