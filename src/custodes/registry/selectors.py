"""Which agents an order covers, and what their status becomes: the kill switch at scale.

A selector order is resolved here against the registry as it stands inside the order's
sequencing transaction (live) or at the same point of a replay: the projections at a log
index are a function of the log before it, so both find the same set. That set is kept
(``kill_order_agents``): an agent registered after the order is not covered by it, and
lifting the order lifts it for exactly the agents it halted.

Statuses are recomputed in bulk (a handful of statements whatever the number of agents),
so one order halting 10,000 agents stays one short transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    insert,
    select,
    union_all,
    update,
)

from custodes.errors import NotFound
from custodes.registry.models import KillOrder, ModelRecord, Selector
from custodes.registry.store import (
    agent_jurisdictions,
    agent_skills,
    agents,
    kill_order_agents,
    kill_orders,
    models,
)

__all__ = [
    "Target",
    "agent_target",
    "covering",
    "keep_targets",
    "lifted_targets",
    "recompute_statuses",
    "resolve",
    "selector_json",
    "targets_of",
]

_CHUNK = 500  # ids per IN list (SQLite's bound-parameter limit is far above)


@dataclass(frozen=True)
class Target:
    """An agent an order covers, with what the authority rules need to know of it."""

    agent_id: str
    home: str
    operator: str


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _models_of_version(conn: Connection, version: str) -> list[str]:
    rows = conn.execute(select(models.c.id, models.c.record)).all()
    return [str(r.id) for r in rows if ModelRecord.model_validate_json(r.record).version == version]


def resolve(conn: Connection, selector: Selector) -> list[Target]:
    """Every registered agent ``selector`` matches (all its fields), sorted by id."""
    query = select(agents.c.id, agents.c.home, agents.c.operator)
    conditions = []
    for column, value in (
        (agents.c.operator, selector.operator),
        (agents.c.sector, selector.sector),
        (agents.c.model, selector.model),
    ):
        if value is not None:
            conditions.append(column == value)
    if selector.jurisdiction is not None:
        places = select(agent_jurisdictions.c.agent_id).where(
            agent_jurisdictions.c.jurisdiction == selector.jurisdiction
        )
        conditions.append(agents.c.id.in_(places))
    if selector.skill is not None:
        skilled = select(agent_skills.c.agent_id).where(agent_skills.c.skill == selector.skill)
        conditions.append(agents.c.id.in_(skilled))
    if selector.model_version is not None:
        conditions.append(agents.c.model.in_(_models_of_version(conn, selector.model_version)))
    rows = conn.execute(query.where(and_(*conditions)).order_by(agents.c.id)).all()
    return [Target(str(r.id), str(r.home), str(r.operator)) for r in rows]


def agent_target(conn: Connection, agent_id: str) -> list[Target]:
    row = conn.execute(
        select(agents.c.home, agents.c.operator).where(agents.c.id == agent_id)
    ).first()
    if row is None:
        raise NotFound(f"no agent {agent_id} is registered on this node", code="unknown_agent")
    return [Target(agent_id, str(row.home), str(row.operator))]


def targets_of(conn: Connection, order_id: str) -> list[Target]:
    """The agents an order already logged covers (its one agent, or its resolved set)."""
    row = conn.execute(
        select(kill_orders.c.agent_id).where(kill_orders.c.order_id == order_id)
    ).first()
    if row is None:
        return []
    if row.agent_id is not None:
        return agent_target(conn, str(row.agent_id))
    query = (
        select(agents.c.id, agents.c.home, agents.c.operator)
        .join(kill_order_agents, kill_order_agents.c.agent_id == agents.c.id)
        .where(kill_order_agents.c.order_id == order_id)
        .order_by(agents.c.id)
    )
    return [Target(str(r.id), str(r.home), str(r.operator)) for r in conn.execute(query)]


def lifted_targets(conn: Connection, order: KillOrder) -> list[Target]:
    """What a reinstate lifts: its one agent, or the lifted selector order's agents."""
    if order.agent_id is not None:
        return agent_target(conn, order.agent_id)  # the one agent, as before selectors
    assert order.lifts is not None
    return targets_of(conn, order.lifts)


def keep_targets(conn: Connection, order_id: str, targets: Sequence[Target]) -> None:
    if targets:
        conn.execute(
            insert(kill_order_agents),
            [{"order_id": order_id, "agent_id": t.agent_id} for t in targets],
        )


def covering(agent_id: str) -> ColumnElement[bool]:
    """A condition on ``kill_orders``: the order names ``agent_id`` or its selector covers it."""
    # One IN over a union of two index look-ups: an OR of the two conditions makes
    # PostgreSQL scan every order (tests/store/test_query_plans.py).
    named = select(kill_orders.c.order_id).where(kill_orders.c.agent_id == agent_id)
    selected = select(kill_order_agents.c.order_id).where(kill_order_agents.c.agent_id == agent_id)
    return kill_orders.c.order_id.in_(union_all(named, selected))


def _halting(conn: Connection, ids: Sequence[str]) -> dict[str, set[str]]:
    """For each of ``ids``, the ops of the active global orders covering it."""
    found: dict[str, set[str]] = {}
    active = and_(kill_orders.c.status == "active", kill_orders.c.scope == "global")
    for chunk in _chunks(ids):
        direct = select(kill_orders.c.agent_id, kill_orders.c.op).where(
            active, kill_orders.c.agent_id.in_(chunk)
        )
        by_selector = (
            select(kill_order_agents.c.agent_id, kill_orders.c.op)
            .join(kill_orders, kill_orders.c.order_id == kill_order_agents.c.order_id)
            .where(active, kill_order_agents.c.agent_id.in_(chunk))
        )
        for query in (direct, by_selector):
            for row in conn.execute(query):
                found.setdefault(str(row.agent_id), set()).add(str(row.op))
    return found


def recompute_statuses(conn: Connection, ids: Sequence[str]) -> None:
    """Set each agent's status from the active global orders covering it, in bulk."""
    halting = _halting(conn, ids)
    rows = []
    for agent_id in ids:
        ops = halting.get(agent_id, set())
        status = "revoked" if "revoke" in ops else "suspended" if ops else "active"
        rows.append({"b_id": agent_id, "b_status": status})
    if rows:
        statement = (
            update(agents)
            .where(agents.c.id == bindparam("b_id"))
            .values(status=bindparam("b_status"))
        )
        conn.execute(statement, rows)


def selector_json(order: KillOrder) -> str | None:
    if order.selector is None:
        return None
    return orjson.dumps(
        order.selector.model_dump(exclude_none=True), option=orjson.OPT_SORT_KEYS
    ).decode()
