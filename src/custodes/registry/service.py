"""RegistryService: signed registry changes and kill orders in, projections and proofs out.

A write is accepted only when (1) the envelope is signed by the acting principal's
registered key, (2) the token's principal and the payload's ``actor`` are that principal,
and (3) the authority rules allow it against the state *inside* the sequencing
transaction — so the check and the change cannot be separated by a concurrent write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, insert, select

from custodes.errors import AuthError, BadRequest, NotFound
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import (
    Envelope,
    EnvelopeSigner,
    parse_envelope,
    sign_envelope,
)
from custodes.ledger.service import LogService
from custodes.registry import relations
from custodes.registry.authority import (
    Action,
    Relation,
    decide,
    decide_over,
    require,
    require_order_right,
)
from custodes.registry.cards import check_card
from custodes.registry.halts import HaltRecords
from custodes.registry.models import (
    REGULATED_AGENT_FIELDS,
    AgentRecord,
    AgentRegister,
    AgentRotateKey,
    AgentUpdate,
    KillOrder,
    ModelRegister,
    ModelUpdate,
    OperatorRecord,
    OperatorRegister,
    OperatorUpdate,
    PrincipalRecord,
    RegistryChange,
)
from custodes.registry.orderbatch import OrderBatcher
from custodes.registry.principals import Principal
from custodes.registry.private import Opening, held_record, verify_opening
from custodes.registry.projection import (
    agent_status,
    apply_change,
    apply_order,
    apply_principal,
    load_agent,
    model_holder,
    order_targets,
)
from custodes.registry.selectors import Cells, Covered
from custodes.registry.store import kill_orders, private_fields
from custodes.store.db import read_tx

__all__ = [
    "ORDER_TYPE",
    "PRINCIPAL_TYPE",
    "REGISTRY_TYPE",
    "IssuedOrder",
    "OrderHook",
    "OrderListener",
    "RegistryService",
]

PRINCIPAL_TYPE = "application/vnd.custodes.principal+json"
REGISTRY_TYPE = "application/vnd.custodes.registry+json"
ORDER_TYPE = "application/vnd.custodes.kill-order+json"
_CHANGE = TypeAdapter(RegistryChange)
_STATUS_TTL = 1.0

# (index, order, its envelope, the agents it covers) for each order logged.
OrderListener = Callable[[int, KillOrder, dict[str, Any], Covered], None]
# Runs in an order's sequencing transaction: (connection, index, order id).
OrderHook = Callable[[Connection, int, str], None]


def _invalid(exc: ValidationError, what: str) -> BadRequest:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    return BadRequest(
        f"{what} is invalid at {where}: {first['msg']}", code="invalid_payload", status=422
    )


def _parse(model: Any, payload: bytes, what: str) -> Any:
    try:
        return (
            model.validate_json(payload)
            if isinstance(model, TypeAdapter)
            else (model.model_validate_json(payload))
        )
    except ValidationError as exc:
        raise _invalid(exc, what) from exc


class RegistryService:
    def __init__(
        self, engine: Engine, log: LogService, node: EnvelopeSigner, jurisdiction: str
    ) -> None:
        self._engine = engine
        self._log = log
        self._node = node
        self.jurisdiction = jurisdiction
        self._listeners: list[OrderListener] = []
        self._status: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()
        self._halts = HaltRecords(engine)
        self._orders = OrderBatcher(log)
        # A party's status on the alliance roster, by code (set by the node's federation).
        self.party_status: Callable[[str], str | None] = lambda _code: None

    def on_order(self, listener: OrderListener) -> None:
        self._listeners.append(listener)

    # -- principals (the node's admin) -------------------------------------------
    def register_principal(self, record: PrincipalRecord) -> int:
        payload = record.model_dump_json().encode()
        envelope = sign_envelope(PRINCIPAL_TYPE, payload, [self._node])
        return self._log.append_own(envelope, lambda c, i: apply_principal(c, i, record))

    # -- signed writes ------------------------------------------------------------
    def signed_by(self, obj: Any, payload_type: str, principal: Principal) -> Envelope:
        """Parse ``obj`` as an envelope of ``payload_type`` signed by ``principal``'s key."""
        envelope = parse_envelope(obj)
        if envelope.payload_type != payload_type:
            raise BadRequest(
                f"expected payloadType {payload_type}", code="unsupported_payload_type", status=422
            )
        verified = self._log.signers.verify(envelope)
        if principal.keyid not in verified:
            raise AuthError(
                f"the envelope must be signed by {principal.id}'s registered key",
                code="signer_mismatch",
                status=403,
            )
        return envelope

    def submit_change(self, obj: Any, principal: Principal) -> int:
        """Log a signed registry change; ``obj`` is its envelope, or ``{"envelope",
        "private"}`` when the change commits to private fields (sent beside it, kept
        here, never logged)."""
        _need(principal, "registry:write")
        raw, opening = _split_body(obj)
        envelope = self.signed_by(raw, REGISTRY_TYPE, principal)
        change = _parse(_CHANGE, envelope.payload, "registry change")
        _actor(change.actor, principal)
        opening = verify_opening(change, opening)
        if isinstance(change, AgentRegister):
            self._check_new_agent(change)
        if isinstance(change, OperatorRegister | OperatorUpdate):
            self._check_home(change.operator.jurisdiction, "operators")

        def project(conn: Connection, index: int) -> None:
            _check_live(conn, change)
            require(self._decide(conn, principal, change))
            apply_change(conn, index, change)
            if opening is not None:
                _keep_private(conn, index, change, opening)

        index = self._log.append_own(envelope, project)
        self._forget(getattr(change, "agent_id", None))
        if isinstance(change, AgentRotateKey):
            for keyid in change.retire:  # a retired key stops signing at once, here
                self._log.signers.forget(keyid)
        return index

    def submit_order(self, obj: Any, principal: Principal) -> tuple[int, KillOrder]:
        issued = self.issue_order(obj, principal)
        return issued.index, issued.order

    def issue_order(self, obj: Any, principal: Principal) -> IssuedOrder:
        """Log a signed kill order (one agent or a selector); what it covers, as logged.

        Concurrent orders are group-committed (custodes.registry.orderbatch), each
        checked against the state the orders before it in the group left.
        """
        _need(principal, "orders:write")
        if principal.role == "regulator":  # before its key: a suspended party's is retired
            require_order_right(principal.jurisdiction, self.party_status(principal.jurisdiction))
        return self.issue_verified_order(self.signed_by(obj, ORDER_TYPE, principal), principal)

    def issue_verified_order(
        self, envelope: Envelope, principal: Principal, also: OrderHook | None = None
    ) -> IssuedOrder:
        """``issue_order`` for an envelope whose signature by ``principal`` the caller has
        verified (a forwarded order, against the roster). ``also(conn, index, order_id)``
        runs in the sequencing transaction, after the order's projection (the inbox)."""
        _need(principal, "orders:write")
        if principal.role == "regulator":  # a partner's or suspended party's: no orders
            require_order_right(principal.jurisdiction, self.party_status(principal.jurisdiction))
        if envelope.payload_type != ORDER_TYPE:
            raise BadRequest(
                f"expected payloadType {ORDER_TYPE}", code="unsupported_payload_type", status=422
            )
        order: KillOrder = _parse(KillOrder, envelope.payload, "kill order")
        _actor(order.actor, principal)

        def project(conn: Connection, index: int) -> Covered:
            require(self._decide_order(conn, principal, order, order_targets(conn, order)))
            covered = apply_order(conn, index, order)
            if also is not None:
                also(conn, index, order.order_id)
            return covered

        index, covered = self._orders.submit(envelope, project)
        with self._lock:
            for agent_id, _operator in covered:
                self._status.pop(agent_id, None)
        for listener in self._listeners:
            listener(index, order, envelope.to_json(), covered)
        return IssuedOrder(index, order, covered)

    def check_order(self, envelope: Envelope, principal: Principal) -> None:
        """Raise what ``issue_verified_order`` would refuse, against the state now (a
        forwarded order is checked before the node logs its issuer's key)."""
        _need(principal, "orders:write")
        if principal.role == "regulator":
            require_order_right(principal.jurisdiction, self.party_status(principal.jurisdiction))
        order: KillOrder = _parse(KillOrder, envelope.payload, "kill order")
        _actor(order.actor, principal)
        with read_tx(self._engine) as conn:
            require(self._decide_order(conn, principal, order, order_targets(conn, order)))

    def _check_home(self, home: str, what: str) -> None:
        if home != self.jurisdiction:
            raise BadRequest(
                f"{what} are registered at their home node; this is the {self.jurisdiction} "
                f"node and the home named is {home}",
                code="wrong_home",
                status=422,
            )

    def _check_new_agent(self, change: AgentRegister) -> None:
        self._check_home(change.agent.home_jurisdiction, "agents")
        if not change.agent.id.startswith(f"urn:custodes:{self.jurisdiction.lower()}:"):
            raise BadRequest(
                "an agent's id must name its home jurisdiction", code="bad_agent_id", status=422
            )
        if change.agent_card is not None:
            check_card(change)

    # -- authority ----------------------------------------------------------------
    def _relation(self, conn: Connection, principal: Principal, change: BaseModel) -> Relation:
        if isinstance(change, AgentRegister):
            return relations.to_agent(principal, change.agent)
        if isinstance(change, AgentUpdate | AgentRotateKey):
            return relations.to_agent(principal, load_agent(conn, change.agent_id))
        if isinstance(change, OperatorRegister | OperatorUpdate):
            record = change.operator
            return relations.to_operator(principal, record.id, record.jurisdiction)
        if isinstance(change, ModelRegister | ModelUpdate):
            named = change.model.operator
            if named is not None and named != principal.id and principal.role == "operator":
                return "other_operator"  # an operator cannot make another hold a model
        return relations.to_model(principal, self.jurisdiction, _holder(conn, change))

    def _decide(self, conn: Connection, principal: Principal, change: Any) -> Any:
        action: Action = change.op
        if isinstance(change, AgentUpdate) and _touches_regulated(conn, change):
            action = "agent.update.regulated"
        return decide(self._relation(conn, principal, change), action)

    def _decide_order(
        self, conn: Connection, principal: Principal, order: KillOrder, covered: Cells
    ) -> Any:
        cells: dict[Relation, tuple[int, str]] = {}
        for (home, operator), (count, example) in sorted(covered.items()):
            relation = relations.to_regulated(principal, home, operator)
            total, first = cells.get(relation, (0, example))
            cells[relation] = (total + count, first)
        if order.op == "reinstate":
            issuer = conn.execute(
                select(kill_orders.c.authority).where(kill_orders.c.order_id == order.lifts)
            ).scalar_one_or_none()
            mine = issuer == principal.id
            return _decided(cells, order, "order.reinstate", issued_by_principal=mine)
        action: Action = f"order.{order.op}.{order.scope}"  # type: ignore[assignment]
        return _decided(
            cells,
            order,
            action,
            territory=order.territory,
            principal_jurisdiction=principal.jurisdiction,
        )

    # -- status for the ledger (decisions) and leases -----------------------------
    def status(self, agent_id: str) -> str | None:
        """The agent's status, cached for a second (decisions are checked at ingest rate)."""
        now = time.monotonic()
        with self._lock:
            hit = self._status.get(agent_id)
        if hit is not None and now - hit[1] < _STATUS_TTL:
            return hit[0]
        with read_tx(self._engine) as conn:
            found = agent_status(conn, agent_id)
        with self._lock:
            self._status[agent_id] = (found, now)
        return found

    def halt_recorded(self, agent_id: str) -> int | None:
        """Where a revoked agent recorded its one halt since its revocation (None: not yet)."""
        return self._halts.since_revocation(agent_id)

    def forget_status(self, agent_id: str) -> None:
        """Drop the cached status of ``agent_id``: another worker logged an order for it."""
        self._forget(agent_id)

    def _forget(self, agent_id: str | None) -> None:
        if agent_id is not None:
            with self._lock:
                self._status.pop(agent_id, None)


@dataclass(frozen=True)
class IssuedOrder:
    """A kill order as logged: its index and the agents it covers, as (agent, operator)
    sorted by agent."""

    index: int
    order: KillOrder
    covered: Covered


def _decided(
    cells: dict[Relation, tuple[int, str]], order: KillOrder, action: Action, **given: Any
) -> Any:
    """One agent's order is decided as before selectors; a selector's over every cell."""
    if order.selector is None and len(cells) == 1:
        return decide(next(iter(cells)), action, **given)
    return decide_over(cells, action, **given)


def _split_body(obj: Any) -> tuple[Any, Opening | None]:
    if not (isinstance(obj, dict) and "envelope" in obj):
        return obj, None
    extra = set(obj) - {"envelope", "private"}
    if extra:
        raise BadRequest(
            f"unexpected fields {sorted(extra)}: send 'envelope' and, if any, 'private'",
            code="invalid_payload",
            status=422,
        )
    private = obj.get("private")
    try:
        return obj["envelope"], None if private is None else Opening.model_validate(private)
    except ValidationError as exc:
        raise _invalid(exc, "the private fields") from exc


def _keep_private(conn: Connection, index: int, change: Any, opening: Opening) -> None:
    record = held_record(change)
    known = select(private_fields.c.entry_index).where(
        private_fields.c.commitment == record.private
    )
    if conn.execute(known).first() is not None:
        raise BadRequest(
            "these private fields were already committed with this salt; use a fresh "
            "random salt for every change (a reused salt links records)",
            code="salt_reused",
            status=409,
        )
    is_operator = isinstance(record, OperatorRecord)
    conn.execute(
        insert(private_fields).values(
            commitment=record.private,
            kind="operator" if is_operator else "agent",
            record_id=record.id
            if is_operator or isinstance(record, AgentRecord)
            else (change.agent_id),
            entry_index=index,
            salt=opening.salt,
            fields=canonical_dumps(opening.fields).decode(),
        )
    )


def _holder(conn: Connection, change: Any) -> str | None:
    if isinstance(change, ModelRegister):
        return None
    model_id = change.model.id if isinstance(change, ModelUpdate) else change.model_id
    held = model_holder(conn, model_id)
    if held is None:
        raise NotFound(f"no model {model_id} is registered", code="unknown_model")
    return held[0]


def _touches_regulated(conn: Connection, change: AgentUpdate) -> bool:
    current = load_agent(conn, change.agent_id).model_dump()
    wanted = change.changes.model_dump(exclude_none=True)
    return any(wanted[f] != current[f] for f in REGULATED_AGENT_FIELDS & set(wanted))


def _check_live(conn: Connection, change: Any) -> None:
    """A revoked agent's record and keys are frozen until its revocation is lifted."""
    if not isinstance(change, AgentUpdate | AgentRotateKey):
        return
    if agent_status(conn, change.agent_id) == "revoked":
        raise BadRequest(
            f"{change.agent_id} is revoked: its record and keys cannot change. Its home "
            "regulator may lift the revocation first (a reinstate order)",
            code="agent_revoked",
            status=409,
        )


def _need(principal: Principal, scope: str) -> None:
    if not principal.can(scope):
        raise AuthError(f"this token lacks the {scope} scope", code="missing_scope", status=403)


def _actor(actor: str, principal: Principal) -> None:
    if actor != principal.id:
        raise AuthError(
            f"the change names actor {actor} but the token is {principal.id}'s",
            code="actor_mismatch",
            status=403,
        )
