"""Which agents an order covers, and what their status becomes: the kill switch at scale.

A selector order is resolved here against the registry as it stands inside the order's
sequencing transaction (live) or at the same point of a replay: the projections at a log
index are a function of the log before it, so both find the same set. That set is kept
(``kill_order_agents``): an agent registered after the order is not covered by it, and
lifting the order lifts it for exactly the agents it halted.

Everything here is set-based SQL — the covered set is written with one INSERT ... SELECT,
statuses are recomputed with one UPDATE, authority is checked over one GROUP BY (home,
operator) — so an order halting 10,000 agents stays a handful of statements in one
short transaction, with no per-agent round trip through Python.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
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
    "Cells",
    "Covered",
    "Target",
    "covered_by",
    "covering",
    "keep_targets",
    "order_cells",
    "recompute_statuses",
    "selector_json",
    "targets_of",
]


class Target(NamedTuple):
    """An agent an order covers, with what the authority rules need to know of it."""

    agent_id: str
    home: str
    operator: str


# (home, operator) -> (agents covered with that home and operator, one of them)
Cells = dict[tuple[str, str], tuple[int, str]]
# (agent, operator) for each agent an order covers, sorted by agent
Covered = list[tuple[str, str]]


def _models_of_version(conn: Connection, version: str) -> list[str]:
    rows = conn.execute(select(models.c.id, models.c.record)).all()
    return [str(r.id) for r in rows if ModelRecord.model_validate_json(r.record).version == version]


def _matching(conn: Connection, selector: Selector) -> ColumnElement[bool]:
    """A condition on ``agents``: the agent matches every field of ``selector``."""
    conditions: list[ColumnElement[bool]] = []
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
    return and_(*conditions)


def _cells(conn: Connection, where: ColumnElement[bool]) -> Cells:
    query = (
        select(agents.c.home, agents.c.operator, func.count(), func.min(agents.c.id))
        .where(where)
        .group_by(agents.c.home, agents.c.operator)
    )
    return {(str(h), str(o)): (int(n), str(e)) for h, o, n, e in conn.execute(query)}


def _one(conn: Connection, agent_id: str) -> Cells:
    found = _cells(conn, agents.c.id == agent_id)
    if not found:
        raise NotFound(f"no agent {agent_id} is registered on this node", code="unknown_agent")
    return found


def _in_order(order_id: str) -> ColumnElement[bool]:
    """A condition on ``agents``: a selector order with this id covers the agent."""
    listed = select(kill_order_agents.c.agent_id).where(kill_order_agents.c.order_id == order_id)
    return agents.c.id.in_(listed)


def _lifted_agent(conn: Connection, order_id: str) -> str | None:
    """The agent a logged order names (None: a selector order, or no such order)."""
    row = conn.execute(
        select(kill_orders.c.agent_id).where(kill_orders.c.order_id == order_id)
    ).first()
    return None if row is None or row.agent_id is None else str(row.agent_id)


def _scope(conn: Connection, order: KillOrder) -> ColumnElement[bool]:
    """A condition on ``agents``: the agents ``order`` covers (or lifts)."""
    if order.agent_id is not None:
        return agents.c.id == order.agent_id
    if order.selector is not None:
        return _in_order(order.order_id)
    assert order.lifts is not None
    named = _lifted_agent(conn, order.lifts)
    return agents.c.id == named if named is not None else _in_order(order.lifts)


def order_cells(conn: Connection, order: KillOrder) -> Cells:
    """Whom ``order`` covers at this point of the log, grouped for the authority check.

    A selector matching no agent is refused (an order that halts nobody is a mistake,
    most likely a typo); a reinstate covers what the order it lifts covered.
    """
    if order.agent_id is not None:
        return _one(conn, order.agent_id)
    if order.selector is not None:
        found = _cells(conn, _matching(conn, order.selector))
        if not found:
            raise NotFound(_NO_MATCH, code="no_matching_agents")
        return found
    return _cells(conn, _scope(conn, order))


_NO_MATCH = (
    "the selector matches no registered agent; check its fields (an order covers the "
    "agents registered when it is issued, none added later)"
)


def keep_targets(conn: Connection, order: KillOrder) -> None:
    """Write the agents a selector order covers, resolved now, in one statement."""
    if order.selector is None:
        return
    chosen = select(literal(order.order_id), agents.c.id).where(_matching(conn, order.selector))
    kept = conn.execute(insert(kill_order_agents).from_select(["order_id", "agent_id"], chosen))
    if kept.rowcount == 0:
        raise NotFound(_NO_MATCH, code="no_matching_agents")


def covered_by(conn: Connection, order: KillOrder) -> Covered:
    """(agent, operator) of each agent ``order`` covers, once it is projected."""
    query = select(agents.c.id, agents.c.operator).where(_scope(conn, order))
    # Rows are tuples: (agent, operator) as they come, no copy per agent.
    rows: Covered = conn.execute(query.order_by(agents.c.id)).all()  # type: ignore[assignment]
    return rows


def targets_of(conn: Connection, order_id: str) -> list[Target]:
    """The agents an order already logged covers (its one agent, or its resolved set)."""
    named = _lifted_agent(conn, order_id)
    where = agents.c.id == named if named is not None else _in_order(order_id)
    query = select(agents.c.id, agents.c.home, agents.c.operator).where(where)
    return [Target(*row) for row in conn.execute(query.order_by(agents.c.id))]


def covering(agent_id: str) -> ColumnElement[bool]:
    """A condition on ``kill_orders``: the order names ``agent_id`` or its selector covers it."""
    # One IN over a union of two index look-ups: an OR of the two conditions makes
    # PostgreSQL scan every order (tests/store/test_query_plans.py).
    named = select(kill_orders.c.order_id).where(kill_orders.c.agent_id == agent_id)
    selected = select(kill_order_agents.c.order_id).where(kill_order_agents.c.agent_id == agent_id)
    return kill_orders.c.order_id.in_(union_all(named, selected))


def _halted_by(op: str) -> ColumnElement[bool]:
    """Correlated to ``agents``: an active global ``op`` order covers the agent."""
    active = and_(
        kill_orders.c.status == "active", kill_orders.c.scope == "global", kill_orders.c.op == op
    )
    named = select(kill_orders.c.order_id).where(active, kill_orders.c.agent_id == agents.c.id)
    selected = (
        select(kill_order_agents.c.order_id)
        .join(kill_orders, kill_orders.c.order_id == kill_order_agents.c.order_id)
        .where(active, kill_order_agents.c.agent_id == agents.c.id)
    )
    return or_(exists(named), exists(selected))


def recompute_statuses(conn: Connection, order: KillOrder) -> None:
    """Set the status of every agent ``order`` covers from the active global orders
    covering it (revoked over suspended over active), in one UPDATE.

    A territorial order changes no status; a new global order can only raise it (no
    need to look at the others); a lift looks at every order still covering the agent.
    """
    if order.scope == "territorial" and order.op != "reinstate":
        return
    status: Any
    if order.op == "revoke":
        status = literal("revoked")
    elif order.op == "suspend":
        status = case((agents.c.status == "revoked", "revoked"), else_="suspended")
    else:
        status = case(
            (_halted_by("revoke"), "revoked"),
            (_halted_by("suspend"), "suspended"),
            else_="active",
        )
    conn.execute(update(agents).where(_scope(conn, order)).values(status=status))


def selector_json(order: KillOrder) -> str | None:
    if order.selector is None:
        return None
    fields = order.selector.model_dump(exclude_none=True)
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode()
