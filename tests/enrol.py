"""Enrol agents in a node's registry the way the alliance does, in-process, for tests.

A regulator registers the operator, the operator registers the agent; each change is
signed by its actor's own key and authorised by the node's real rules.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime

from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.node import Node
from custodes.registry.models import (
    AgentRecord,
    AgentRegister,
    Contact,
    OperatorRecord,
    OperatorRegister,
    PrincipalRecord,
)
from custodes.registry.principals import DEFAULT_SCOPES, Principal
from custodes.registry.private import request_body, seal_change
from custodes.registry.service import REGISTRY_TYPE

REGULATOR_KEY = EnvelopeSigner.from_seed(b"r" * 32)
OPERATOR_KEY = EnvelopeSigner.from_seed(b"o" * 32)
CONTACT = Contact(name="Duty desk", email="duty@operator.example", phone="+44 20 7946 0000")


def _b64(key: EnvelopeSigner) -> str:
    return base64.b64encode(key.public_key).decode()


def principal(node: Node, pid: str, role: str, key: EnvelopeSigner) -> Principal:
    """Register ``pid`` (once) and return it with its role's default scopes."""
    if node.signers.name_of(key.keyid) is None:
        record = PrincipalRecord(
            id=pid,
            role=role,
            jurisdiction=node.settings.jurisdiction,
            name=pid,
            public_key=_b64(key),
        )  # type: ignore[arg-type]
        node.registry.register_principal(record)
    found = node.tokens.principal(pid)
    return replace(found, scopes=frozenset(DEFAULT_SCOPES[role]))


def submit(node: Node, actor: Principal, key: EnvelopeSigner, change: object) -> int:
    sealed, opening = seal_change(change)  # private fields travel beside the envelope
    payload = sealed.model_dump_json(exclude_none=True).encode()
    envelope = sign_envelope(REGISTRY_TYPE, payload, [key])
    return node.registry.submit_change(request_body(envelope.to_json(), opening), actor)


def enrol(
    node: Node,
    key: EnvelopeSigner,
    slug: str = "agent-1",
    *,
    sector: str = "finance",
    operating: tuple[str, ...] = (),
) -> str:
    """Register (once) a regulator and an operator, then the agent with ``key``; its id."""
    jurisdiction = node.settings.jurisdiction
    now = datetime.now(UTC)
    regulator = principal(node, f"regulator:{jurisdiction.lower()}", "regulator", REGULATOR_KEY)
    operator = principal(node, "operator:acme", "operator", OPERATOR_KEY)
    if not node.queries.operators():
        record = OperatorRecord(
            id="operator:acme",
            legal_name="Acme Agents Ltd",
            kind="provider",
            jurisdiction=jurisdiction,
            address="1 Example Street",
            contact=CONTACT,
        )
        submit(
            node,
            regulator,
            REGULATOR_KEY,
            OperatorRegister(actor=regulator.id, at=now, operator=record),
        )
    agent_id = f"urn:custodes:{jurisdiction.lower()}:agent:{slug}"
    agent = AgentRecord(
        id=agent_id,
        name=slug,
        version="1.0",
        operator="operator:acme",
        home_jurisdiction=jurisdiction,
        operating_jurisdictions=operating,
        sector=sector,
        risk_tier="high",
        autonomy_level=3,
        intended_purpose="automated trading within a mandate",
    )
    submit(
        node,
        operator,
        OPERATOR_KEY,
        AgentRegister(actor=operator.id, at=now, agent=agent, keys=(_b64(key),)),
    )
    return agent_id
