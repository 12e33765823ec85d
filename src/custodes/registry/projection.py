"""Apply a logged change to the registry tables: the only code that writes them.

The same functions run in the live path (inside the sequencing transaction, so a change
lands if and only if its entry does) and in ``rebuild`` (replaying the log into empty
tables). Errors raised here roll the whole transaction back: nothing is written.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from custodes.errors import BadRequest, NotFound
from custodes.ledger.dsse import key_thumbprint
from custodes.ledger.ed25519 import check_public_key
from custodes.ledger.store import signers
from custodes.registry.cards import card_digest, filled_from_card
from custodes.registry.models import (
    AgentRecord,
    AgentRegister,
    AgentRotateKey,
    AgentUpdate,
    KillOrder,
    ModelRecord,
    ModelRegister,
    ModelRetire,
    ModelUpdate,
    OperatorRegister,
    OperatorUpdate,
    PrincipalRecord,
)
from custodes.registry.selectors import (
    Cells,
    Covered,
    covered_by,
    keep_targets,
    order_cells,
    recompute_statuses,
    selector_json,
)
from custodes.registry.store import (
    agent_cards,
    agent_jurisdictions,
    agent_skills,
    agents,
    key_events,
    kill_orders,
    models,
    operators,
    principals,
    record_versions,
)

__all__ = [
    "agent_status",
    "apply_change",
    "apply_order",
    "apply_principal",
    "load_agent",
    "model_holder",
    "order_targets",
]


# The statements every registry entry runs, built once: a replay runs them thousands of
# times a second, and building, coercing and cache-keying a fresh statement per call was
# most of its time (docs/design/0013). Parameters are bound at execution.
_INSERT_VERSION = insert(record_versions)
_KEY_IN_USE = select(signers.c.keyid).where(signers.c.keyid == bindparam("b_keyid"))
_INSERT_SIGNER = insert(signers)
_INSERT_KEY_EVENT = insert(key_events)
_LOAD_AGENT = select(agents.c.record).where(agents.c.id == bindparam("b_id"))
_AGENT_STATUS = select(agents.c.status).where(agents.c.id == bindparam("b_id"))
_INSERT_AGENT = insert(agents)
_UPDATE_AGENT = update(agents).where(agents.c.id == bindparam("b_id"))
_CLEAR_PLACES = delete(agent_jurisdictions).where(
    agent_jurisdictions.c.agent_id == bindparam("b_id")
)
_CLEAR_SKILLS = delete(agent_skills).where(agent_skills.c.agent_id == bindparam("b_id"))
_INSERT_PLACES = insert(agent_jurisdictions)
_INSERT_SKILLS = insert(agent_skills)


def _json(record: BaseModel) -> str:
    return record.model_dump_json(exclude_none=True)


def _version(conn: Connection, kind: str, rid: str, index: int, record: BaseModel) -> None:
    row = {"kind": kind, "id": rid, "entry_index": index, "record": _json(record)}
    conn.execute(_INSERT_VERSION, row)


def _add_key(conn: Connection, owner: str, key_b64: str, index: int) -> str:
    public_key = base64.b64decode(key_b64, validate=True)
    if len(public_key) != 32:
        raise BadRequest("agent keys are raw 32-byte Ed25519 keys, base64", code="bad_public_key")
    check_public_key(public_key, what=f"public key of {owner}")
    keyid = key_thumbprint(public_key)
    if conn.execute(_KEY_IN_USE, {"b_keyid": keyid}).first():
        raise BadRequest(f"key {keyid[:16]}… is already registered", code="key_in_use", status=409)
    signer = {"name": owner, "public_key": public_key, "status": "active"}
    conn.execute(_INSERT_SIGNER, {"keyid": keyid, "entry_index": index, **signer})
    event = {"entry_index": index, "keyid": keyid, "agent_id": owner, "event": "added"}
    conn.execute(_INSERT_KEY_EVENT, event)
    return keyid


def apply_principal(conn: Connection, index: int, record: PrincipalRecord) -> None:
    if conn.execute(select(principals.c.id).where(principals.c.id == record.id)).first():
        raise BadRequest(f"{record.id} is already registered", code="principal_exists", status=409)
    keyid = _add_key(conn, record.id, record.public_key, index)
    conn.execute(
        insert(principals).values(
            id=record.id,
            role=record.role,
            jurisdiction=record.jurisdiction,
            name=record.name,
            keyid=keyid,
            entry_index=index,
        )
    )


def load_agent(conn: Connection, agent_id: str) -> AgentRecord:
    row = conn.execute(_LOAD_AGENT, {"b_id": agent_id}).first()
    if row is None:
        raise NotFound(f"no agent {agent_id} is registered on this node", code="unknown_agent")
    return AgentRecord.model_validate_json(row.record)


def agent_status(conn: Connection, agent_id: str) -> str | None:
    row = conn.execute(_AGENT_STATUS, {"b_id": agent_id}).first()
    return None if row is None else str(row.status)


def _write_agent(conn: Connection, record: AgentRecord, index: int, *, new: bool) -> None:
    values = {
        "operator": record.operator,
        "home": record.home_jurisdiction,
        "sector": record.sector,
        "model": record.model,
        "record": _json(record),
        "entry_index": index,
    }
    if new:
        new_row = {"id": record.id, "status": "active", "created_index": index}
        conn.execute(_INSERT_AGENT, {**new_row, **values})
    else:
        conn.execute(_UPDATE_AGENT, {"b_id": record.id, **values})
        conn.execute(_CLEAR_PLACES, {"b_id": record.id})
        conn.execute(_CLEAR_SKILLS, {"b_id": record.id})
    places = {record.home_jurisdiction, *record.operating_jurisdictions}
    conn.execute(
        _INSERT_PLACES, [{"agent_id": record.id, "jurisdiction": j} for j in sorted(places)]
    )
    skills = sorted({s.id for s in record.skills})
    if skills:
        conn.execute(_INSERT_SKILLS, [{"agent_id": record.id, "skill": s} for s in skills])
    _version(conn, "agent", record.id, index, record)


def _operator(conn: Connection, index: int, change: OperatorRegister | OperatorUpdate) -> None:
    record = change.operator
    exists = conn.execute(select(operators.c.id).where(operators.c.id == record.id)).first()
    if isinstance(change, OperatorRegister) and exists:
        raise BadRequest(f"{record.id} is already registered", code="operator_exists", status=409)
    if isinstance(change, OperatorUpdate) and not exists:
        raise NotFound(f"no operator {record.id} is registered", code="unknown_operator")
    conn.execute(delete(operators).where(operators.c.id == record.id))
    conn.execute(
        insert(operators).values(
            id=record.id, jurisdiction=record.jurisdiction, record=_json(record), entry_index=index
        )
    )
    _version(conn, "operator", record.id, index, record)


def _agent_register(conn: Connection, index: int, change: AgentRegister) -> None:
    record = filled_from_card(change)
    if agent_status(conn, record.id) is not None:
        raise BadRequest(f"{record.id} is already registered", code="agent_exists", status=409)
    if not conn.execute(select(operators.c.id).where(operators.c.id == record.operator)).first():
        raise NotFound(
            f"operator {record.operator} is not registered; register it first",
            code="unknown_operator",
        )
    _write_agent(conn, record, index, new=True)
    if change.agent_card is not None:
        conn.execute(
            insert(agent_cards).values(
                agent_id=record.id, digest=card_digest(change.agent_card), entry_index=index
            )
        )
    for key in change.keys:
        _add_key(conn, record.id, key, index)


def _agent_update(conn: Connection, index: int, change: AgentUpdate) -> None:
    current = load_agent(conn, change.agent_id)
    changed = change.changes.model_dump(exclude_none=True)
    record = AgentRecord.model_validate({**current.model_dump(), **changed})
    _write_agent(conn, record, index, new=False)


def _agent_rotate(conn: Connection, index: int, change: AgentRotateKey) -> None:
    load_agent(conn, change.agent_id)
    for keyid in change.retire:
        owned = conn.execute(
            select(signers.c.status).where(
                signers.c.keyid == keyid, signers.c.name == change.agent_id
            )
        ).first()
        if owned is None or owned.status != "active":
            raise BadRequest(
                f"key {keyid[:16]}… is not an active key of {change.agent_id}", code="unknown_key"
            )
        conn.execute(
            update(signers)
            .where(signers.c.keyid == keyid)
            .values(status="retired", entry_index=index)
        )
        conn.execute(
            insert(key_events).values(
                entry_index=index, keyid=keyid, agent_id=change.agent_id, event="retired"
            )
        )
    for key in change.add:
        _add_key(conn, change.agent_id, key, index)
    active = conn.execute(
        select(signers.c.keyid).where(
            signers.c.name == change.agent_id, signers.c.status == "active"
        )
    ).first()
    if active is None:
        raise BadRequest(
            "a rotation must leave the agent at least one active key", code="no_active_key"
        )
    conn.execute(update(agents).where(agents.c.id == change.agent_id).values(entry_index=index))


def model_holder(conn: Connection, model_id: str) -> tuple[str, str] | None:
    """(holder, status) of a registered model, None if there is none."""
    row = conn.execute(select(models.c.holder, models.c.status).where(models.c.id == model_id))
    found = row.first()
    return None if found is None else (str(found.holder), str(found.status))


def _held_by(conn: Connection, model_id: str, holder: str) -> BadRequest:
    regulator = conn.execute(
        select(principals.c.id).where(
            principals.c.role == "regulator",
            principals.c.jurisdiction
            == select(operators.c.jurisdiction).where(operators.c.id == holder).scalar_subquery(),
        )
    ).scalar()
    dispute = regulator or "the home regulator of this node"
    return BadRequest(
        f"{model_id} is already registered and held by {holder}; only {holder} or its "
        f"home regulator may change or retire it. If the name is yours, ask {dispute} to "
        "correct or retire it",
        code="model_exists",
        status=409,
        detail={"model": model_id, "holder": holder, "dispute_with": regulator},
    )


def _model(conn: Connection, index: int, change: ModelRegister) -> None:
    record = change.model
    held = model_holder(conn, record.id)
    if held is not None:
        raise _held_by(conn, record.id, held[0])
    _check_operator(conn, record.operator)
    holder = record.operator or change.actor
    conn.execute(
        insert(models).values(
            id=record.id, record=_json(record), entry_index=index, holder=holder, status="active"
        )
    )
    _version(conn, "model", record.id, index, record)


def _check_operator(conn: Connection, operator_id: str | None) -> None:
    if operator_id is None:
        return
    if not conn.execute(select(operators.c.id).where(operators.c.id == operator_id)).first():
        raise NotFound(
            f"operator {operator_id} is not registered; a model is held by a registered operator",
            code="unknown_operator",
        )


def _live_model(conn: Connection, model_id: str) -> tuple[str, str]:
    held = model_holder(conn, model_id)
    if held is None:
        raise NotFound(f"no model {model_id} is registered", code="unknown_model")
    if held[1] == "retired":
        raise BadRequest(
            f"{model_id} is retired; register the model under a new id",
            code="model_retired",
            status=409,
        )
    return held


def _model_update(conn: Connection, index: int, change: ModelUpdate) -> None:
    record: ModelRecord = change.model
    _check_operator(conn, record.operator)
    current, _status = _live_model(conn, record.id)
    holder = record.operator or current
    conn.execute(
        update(models)
        .where(models.c.id == record.id)
        .values(record=_json(record), entry_index=index, holder=holder)
    )
    _version(conn, "model", record.id, index, record)


def _model_retire(conn: Connection, index: int, change: ModelRetire) -> None:
    _live_model(conn, change.model_id)
    conn.execute(
        update(models)
        .where(models.c.id == change.model_id)
        .values(status="retired", entry_index=index)
    )


_APPLY: dict[type[BaseModel], Callable[[Connection, int, object], None]] = {
    OperatorRegister: _operator,  # type: ignore[dict-item]
    OperatorUpdate: _operator,  # type: ignore[dict-item]
    AgentRegister: _agent_register,  # type: ignore[dict-item]
    AgentUpdate: _agent_update,  # type: ignore[dict-item]
    AgentRotateKey: _agent_rotate,  # type: ignore[dict-item]
    ModelRegister: _model,  # type: ignore[dict-item]
    ModelUpdate: _model_update,  # type: ignore[dict-item]
    ModelRetire: _model_retire,  # type: ignore[dict-item]
}


def apply_change(conn: Connection, index: int, change: BaseModel) -> None:
    _APPLY[type(change)](conn, index, change)


def order_targets(conn: Connection, order: KillOrder) -> Cells:
    """Whom ``order`` covers at this point of the log (custodes.registry.selectors)."""
    return order_cells(conn, order)


def _lift(conn: Connection, index: int, order: KillOrder) -> None:
    lifted_selector = conn.execute(
        select(kill_orders.c.agent_id).where(kill_orders.c.order_id == order.lifts)
    ).first()
    named = None if lifted_selector is None else lifted_selector.agent_id
    lifted = conn.execute(
        update(kill_orders)
        .where(
            kill_orders.c.order_id == order.lifts,
            kill_orders.c.status == "active",
            kill_orders.c.agent_id.is_(None)
            if order.agent_id is None
            else kill_orders.c.agent_id == order.agent_id,
        )
        .values(status="lifted", lifted_index=index)
    )
    if lifted.rowcount != 1:
        whose = order.agent_id or "a selector"
        hint = "" if named is None or named == order.agent_id else f" (it names {named})"
        raise NotFound(
            f"no active order {order.lifts} for {whose} to lift{hint}", code="unknown_order"
        )


def apply_order(conn: Connection, index: int, order: KillOrder) -> Covered:
    """Project a kill order (validated and authorised by the caller); the agents it covers
    as (agent, operator), sorted by agent."""
    if order.agent_id is not None:
        load_agent(conn, order.agent_id)
    if conn.execute(
        select(kill_orders.c.order_id).where(kill_orders.c.order_id == order.order_id)
    ).first():
        raise BadRequest(f"order {order.order_id} already exists", code="order_exists", status=409)
    if order.op == "reinstate":
        _lift(conn, index, order)
    status = "applied" if order.op == "reinstate" else "active"
    conn.execute(
        insert(kill_orders).values(
            order_id=order.order_id,
            agent_id=order.agent_id,
            selector=selector_json(order),
            op=order.op,
            scope=order.scope,
            territory=order.territory,
            reason=order.reason,
            authority=order.actor,
            status=status,
            issued_index=index,
        )
    )
    keep_targets(conn, order)
    recompute_statuses(conn, order)
    return covered_by(conn, order)
