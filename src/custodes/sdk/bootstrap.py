"""Stand up a jurisdiction's authorities on a fresh node and enrol agents, over HTTP.

For demos, tests and first installs: the node's admin creates a regulator and an
operator principal (each with a fresh key and an API token); the regulator registers the
operator; the operator registers agents. Every change goes through the node's real
rules, signed by its actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.registry.models import AgentRecord, Contact, OperatorRecord

__all__ = ["Authorities", "bootstrap", "enrol_agent", "register_principal"]


@dataclass
class Authorities:
    jurisdiction: str
    regulator: Client
    operator: Client


def register_principal(
    node: Client | httpx.Client,
    admin_token: str,
    pid: str,
    *,
    role: str,
    jurisdiction: str,
    key: EnvelopeSigner,
) -> str:
    """Register a principal with the node's admin token; return a fresh API token.

    ``node`` is a Client, or an httpx client with the node's ``base_url`` to send through.
    """
    admin = _admin(node, admin_token)
    admin.register_principal(pid, role=role, jurisdiction=jurisdiction, public_key=key.public_key)
    return str(admin.issue_token(pid)["token"])


def _admin(node: Client | httpx.Client, admin_token: str) -> Client:
    if isinstance(node, Client):
        return node.acting_as(admin_token=admin_token)
    return Client(str(node.base_url), admin_token=admin_token, http=node)


def bootstrap(
    base_url: str,
    admin_token: str,
    jurisdiction: str,
    *,
    operator: str = "acme",
    client: httpx.Client | None = None,
    regulator_key: EnvelopeSigner | None = None,
) -> Authorities:
    """A regulator and an operator for ``jurisdiction``, the operator registered.

    ``client`` is the httpx transport to share (by default the clients open their own).
    ``regulator_key``: the regulator is ``regulator:<code>`` as the alliance roster vouches
    for it (a principal on the node already, with this key), so it is only given a token;
    without it, a regulator with a fresh key is registered by the admin.
    """
    node = Client(base_url) if client is None else Client(base_url, http=client)
    code = jurisdiction.lower()
    keys = regulator_key or EnvelopeSigner.generate(), EnvelopeSigner.generate()
    reg_id, op_id = f"regulator:{code}", f"operator:{operator}"
    if regulator_key is None:
        reg_token = register_principal(
            node, admin_token, reg_id, role="regulator", jurisdiction=jurisdiction, key=keys[0]
        )
    else:  # the alliance roster vouches for it: a principal already, it needs a token
        reg_token = str(_admin(node, admin_token).issue_token(reg_id)["token"])
    op_token = register_principal(
        node, admin_token, op_id, role="operator", jurisdiction=jurisdiction, key=keys[1]
    )
    regulator = node.acting_as(reg_id, reg_token, keys[0])
    operator_client = node.acting_as(op_id, op_token, keys[1])
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
