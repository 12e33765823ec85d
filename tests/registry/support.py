"""Helpers for the registry tests: a small alliance of principals, signed changes, state.

Every change is signed by its actor's own key and submitted with a principal that came
from a real API token (``TokenStore.authenticate``), so scopes are the token's.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import select

from custodes.client import Client, new_order_id
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.node import Node
from custodes.registry.models import (
    AgentRecord,
    AgentRegister,
    Contact,
    KillOrder,
    OperatorRecord,
    OperatorRegister,
    PrincipalRecord,
    Selector,
)
from custodes.registry.principals import Principal
from custodes.registry.private import request_body, seal_change
from custodes.registry.service import ORDER_TYPE, REGISTRY_TYPE, IssuedOrder
from custodes.registry.store import PROJECTION_TABLES
from custodes.sdk.decisions import sign_decision
from custodes.store.db import metadata, read_tx
from tests.enrol import OPERATOR_KEY, REGULATOR_KEY

__all__ = [
    "CONTACT",
    "Actor",
    "World",
    "add_actor",
    "agent_record",
    "b64",
    "build_world",
    "client_for",
    "decision",
    "fresh_slug",
    "issue",
    "order",
    "register_agent",
    "registry_state",
    "submit",
]

HOME, HOST, OTHER = "ZZ", "FR", "DE"
CONTACT = Contact(name="Duty desk", email="duty@operator.example", phone="+44 20 7946 0000")
_slugs = itertools.count()


def fresh_slug(prefix: str = "agent") -> str:
    return f"{prefix}-{next(_slugs)}"


def b64(key: EnvelopeSigner) -> str:
    return base64.b64encode(key.public_key).decode()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """A principal, the key it signs with and the API token it authenticates with."""

    principal: Principal
    key: EnvelopeSigner
    token: str

    @property
    def id(self) -> str:
        return self.principal.id


def add_actor(
    node: Node,
    pid: str,
    role: str,
    jurisdiction: str,
    key: EnvelopeSigner,
    *,
    scopes: list[str] | None = None,
) -> Actor:
    """Register ``pid`` (once) with ``key``; a fresh token for it, with ``scopes``."""
    if node.signers.name_of(key.keyid) is None:
        record = PrincipalRecord(
            id=pid,
            role=role,  # type: ignore[arg-type]
            jurisdiction=jurisdiction,
            name=pid,
            public_key=b64(key),
        )
        node.registry.register_principal(record)
    token = str(node.tokens.issue(pid, scopes, ttl=3600)["token"])
    return Actor(node.tokens.authenticate(token), key, token)


def client_for(http: httpx.Client, actor: Actor) -> Client:
    """The node client acting as ``actor``, over ``http`` (e.g. a TestClient)."""
    return Client(
        str(http.base_url), principal=actor.id, token=actor.token, key=actor.key, http=http
    )


def submit(
    node: Node, actor: Actor, change: BaseModel, *, key: EnvelopeSigner | None = None
) -> int:
    """Sign ``change`` (with ``key``, by default the actor's) and submit it as ``actor``."""
    sealed, opening = seal_change(change)  # private fields travel beside the envelope
    payload = sealed.model_dump_json(exclude_none=True).encode()
    envelope = sign_envelope(REGISTRY_TYPE, payload, [key or actor.key])
    return node.registry.submit_change(request_body(envelope.to_json(), opening), actor.principal)


def order(
    node: Node,
    actor: Actor,
    op: str,
    agent_id: str,
    *,
    territory: str | None = None,
    lifts: str | None = None,
    order_id: str | None = None,
) -> tuple[int, KillOrder]:
    """Issue a kill order as ``actor``, signed with its key."""
    kill = KillOrder(
        op=op,  # type: ignore[arg-type]
        order_id=order_id or new_order_id(),
        agent_id=agent_id,
        scope="territorial" if territory else "global",
        territory=territory,
        reason=f"{op} by {actor.id}",
        actor=actor.id,
        at=now(),
        lifts=lifts,
    )
    envelope = sign_envelope(ORDER_TYPE, kill.model_dump_json().encode(), [actor.key])
    return node.registry.submit_order(envelope.to_json(), actor.principal)


def issue(
    node: Node,
    actor: Actor,
    op: str,
    *,
    agent_id: str | None = None,
    selector: Selector | None = None,
    territory: str | None = None,
    lifts: str | None = None,
) -> IssuedOrder:
    """Issue an order for one agent or by ``selector`` as ``actor``; what it covers."""
    kill = KillOrder(
        op=op,  # type: ignore[arg-type]
        order_id=new_order_id(),
        agent_id=agent_id,
        selector=selector,
        scope="territorial" if territory else "global",
        territory=territory,
        reason=f"{op} by {actor.id}",
        actor=actor.id,
        at=now(),
        lifts=lifts,
    )
    payload = kill.model_dump_json(exclude_none=True).encode()
    envelope = sign_envelope(ORDER_TYPE, payload, [actor.key])
    return node.registry.issue_order(envelope.to_json(), actor.principal)


def agent_record(slug: str, operator: str = "operator:acme", **fields: Any) -> AgentRecord:
    values: dict[str, Any] = {
        "id": f"urn:custodes:{HOME.lower()}:agent:{slug}",
        "name": slug,
        "version": "1.0",
        "operator": operator,
        "home_jurisdiction": HOME,
        "sector": "finance",
        "risk_tier": "high",
        "autonomy_level": 3,
        "intended_purpose": "automated trading within a mandate",
    }
    return AgentRecord(**(values | fields))


def operator_record(oid: str, jurisdiction: str = HOME) -> OperatorRecord:
    return OperatorRecord(
        id=oid,
        legal_name=f"{oid} Ltd",
        kind="provider",
        jurisdiction=jurisdiction,
        address="1 Example Street",
        contact=CONTACT,
    )


@dataclass(frozen=True)
class World:
    """A node of jurisdiction ZZ with its regulator, a host regulator (FR), two
    registered operators (acme, globex) and an auditor."""

    node: Node
    home: Actor
    host: Actor
    acme: Actor
    globex: Actor
    auditor: Actor


def build_world(node: Node) -> World:
    assert node.settings.jurisdiction == HOME
    home = add_actor(node, "regulator:zz", "regulator", HOME, REGULATOR_KEY)
    host = add_actor(node, "regulator:fr", "regulator", HOST, EnvelopeSigner.from_seed(b"f" * 32))
    acme = add_actor(node, "operator:acme", "operator", HOME, OPERATOR_KEY)
    globex = add_actor(
        node, "operator:globex", "operator", HOME, EnvelopeSigner.from_seed(b"g" * 32)
    )
    auditor = add_actor(
        node, "auditor:audit-co", "auditor", HOME, EnvelopeSigner.from_seed(b"a" * 32)
    )
    for operator in ("operator:acme", "operator:globex"):
        submit(
            node,
            home,
            OperatorRegister(actor=home.id, at=now(), operator=operator_record(operator)),
        )
    return World(node, home, host, acme, globex, auditor)


def register_agent(
    world: World,
    key: EnvelopeSigner,
    slug: str | None = None,
    *,
    by: Actor | None = None,
    card: dict[str, Any] | None = None,
    **fields: Any,
) -> str:
    """Have acme (or ``by``) register an agent holding ``key`` (with an unsigned
    AgentCard when ``card`` is given); its id."""
    actor = by or world.acme
    record = agent_record(
        slug or fresh_slug(), operator=fields.pop("operator", "operator:acme"), **fields
    )
    submit(
        world.node,
        actor,
        AgentRegister(actor=actor.id, at=now(), agent=record, keys=(b64(key),), agent_card=card),
    )
    return record.id


def decision(key: EnvelopeSigner, agent_id: str, n: int = 0, **fields: Any) -> dict[str, Any]:
    return sign_decision(key, agent_id, f"trade #{n}", "within the mandate", **fields).to_json()


def registry_state(node: Node) -> dict[str, Any]:
    """The log's length and every row of every registry table (tokens and private
    fields included)."""
    state: dict[str, Any] = {"sequenced": node.store.sequenced_size()}
    with read_tx(node.engine) as conn:
        for name in (*PROJECTION_TABLES, "api_tokens", "private_fields"):
            table = metadata.tables[name]
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            state[name] = [tuple(r) for r in rows]
    return state
