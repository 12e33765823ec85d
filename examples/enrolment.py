"""What registration gives an agent before its first action: an id, a key, a home node.

On a real node the operator registers its agent once (``custodes registry agent
register``) and keeps the agent's key. For the examples, ``enrol`` does all of it on any
node you hold the admin token of: it registers a regulator and an operator (fresh keys,
unique ids, so it can run again), the regulator registers the operator, and the operator
registers the agent.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.registry.models import Contact, OperatorRecord
from custodes.sdk.bootstrap import Authorities, enrol_agent, register_principal

__all__ = ["Enrolled", "admin_token", "enrol", "node_url"]


def node_url() -> str:
    return os.environ.get("CUSTODES_NODE_URL", "http://127.0.0.1:8400")


def admin_token() -> str:
    # The development token works on a node serving on loopback without a configured one.
    return os.environ.get("CUSTODES_ADMIN_TOKEN", "custodes-dev-admin-token")


@dataclass
class Enrolled:
    agent_id: str
    key: EnvelopeSigner  # the agent's own key: it signs the agent's decisions and lease requests
    jurisdiction: str
    regulator: Client  # the agent's home regulator, who can suspend it


def _principal(node: Client, admin: str, pid: str, jurisdiction: str) -> Client:
    key = EnvelopeSigner.generate()
    role = pid.split(":", maxsplit=1)[0]
    token = register_principal(node, admin, pid, role=role, jurisdiction=jurisdiction, key=key)
    return node.acting_as(pid, token, key)


def enrol(url: str, admin: str, slug: str = "example-trader", sector: str = "finance") -> Enrolled:
    suffix = secrets.token_hex(3)
    node = Client(url)
    jurisdiction = str(node.node_info().jurisdiction)
    regulator = _principal(node, admin, f"regulator:example-{suffix}", jurisdiction)
    operator = _principal(node, admin, f"operator:example-{suffix}", jurisdiction)
    regulator.register_operator(
        OperatorRecord(
            id=operator.principal,
            legal_name="Example Agents Ltd",
            kind="provider-deployer",
            jurisdiction=jurisdiction,
            address="1 Example Street",
            contact=Contact(name="Duty desk", email="duty@agents.example", phone="+00 0000"),
        )
    )
    key = EnvelopeSigner.generate()
    authorities = Authorities(jurisdiction, regulator, operator)
    agent_id = enrol_agent(authorities, key, f"{slug}-{suffix}", sector=sector)
    return Enrolled(agent_id, key, jurisdiction, regulator)
