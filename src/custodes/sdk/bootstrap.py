"""Stand up a jurisdiction's authorities on a fresh node and enrol agents, over HTTP.

For demos, tests and first installs: the node's admin creates a regulator and an
operator principal (each with a fresh key and an API token); the regulator registers the
operator; the operator registers agents. Every change goes through the node's real
rules, signed by its actor.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from custodes.ledger.dsse import EnvelopeSigner
from custodes.registry.models import AgentRecord, Contact, OperatorRecord
from custodes.sdk.decisions import raise_for_error
from custodes.sdk.registry import RegistryClient
from custodes.sdk.transport import node_client

__all__ = ["Authorities", "bootstrap", "enrol_agent", "register_principal"]


@dataclass
class Authorities:
    jurisdiction: str
    regulator: RegistryClient
    operator: RegistryClient


def register_principal(
    http: httpx.Client,
    admin_token: str,
    pid: str,
    *,
    role: str,
    jurisdiction: str,
    key: EnvelopeSigner,
) -> str:
    """Register a principal with the node's admin token; return a fresh API token."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    response = http.post(
        "/api/v1/admin/principals",
        headers=headers,
        json={
            "id": pid,
            "role": role,
            "jurisdiction": jurisdiction,
            "name": pid,
            "public_key": base64.b64encode(key.public_key).decode(),
        },
    )
    raise_for_error(response)
    response = http.post("/api/v1/admin/tokens", headers=headers, json={"principal": pid})
    raise_for_error(response)
    token: str = response.json()["token"]
    return token


def bootstrap(
    base_url: str,
    admin_token: str,
    jurisdiction: str,
    *,
    operator: str = "acme",
    client: httpx.Client | None = None,
) -> Authorities:
    http = client or node_client(base_url, timeout=30)
    code = jurisdiction.lower()
    keys = EnvelopeSigner.generate(), EnvelopeSigner.generate()
    reg_id, op_id = f"regulator:{code}", f"operator:{operator}"
    reg_token = register_principal(
        http, admin_token, reg_id, role="regulator", jurisdiction=jurisdiction, key=keys[0]
    )
    op_token = register_principal(
        http, admin_token, op_id, role="operator", jurisdiction=jurisdiction, key=keys[1]
    )
    regulator = RegistryClient(base_url, reg_id, reg_token, keys[0], client=http)
    operator_client = RegistryClient(base_url, op_id, op_token, keys[1], client=http)
    contact = Contact(
        name=f"{operator} duty desk", email=f"duty@{operator}.example", phone="+00 0000 0000"
    )
    regulator.register_operator(
        OperatorRecord(
            id=op_id,
            legal_name=f"{operator.title()} Ltd",
            kind="provider-deployer",
            jurisdiction=jurisdiction,
            address=f"1 {operator.title()} Street",
            contact=contact,
        )
    )
    return Authorities(jurisdiction, regulator, operator_client)


def enrol_agent(
    authorities: Authorities,
    key: EnvelopeSigner,
    slug: str,
    *,
    sector: str = "finance",
    operating: Sequence[str] = (),
    risk_tier: str = "high",
    purpose: str = "automated decisions within a mandate",
) -> str:
    """Have the operator register an agent holding ``key``; return its alliance id."""
    home = authorities.jurisdiction
    agent_id = f"urn:custodes:{home.lower()}:agent:{slug}"
    record = AgentRecord(
        id=agent_id,
        name=slug,
        version="1.0",
        operator=authorities.operator.principal,
        home_jurisdiction=home,
        operating_jurisdictions=tuple(operating),
        sector=sector,
        risk_tier=risk_tier,
        autonomy_level=3,
        intended_purpose=purpose,
    )
    authorities.operator.register_agent(record, [key.public_key])
    return agent_id
