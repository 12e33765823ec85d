"""A2A AgentCards attached to an agent's registration: verified, then used to fill it.

The card travels inside the signed registration, so the log holds exactly what was
verified, and a replay fills the record the same way.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from custodes.ledger.canonical import canonical_dumps
from custodes.registry.agentcard import parse_agent_card, registry_fields, verify_card_signatures
from custodes.registry.models import AgentRecord, AgentRegister, Interface, Skill

__all__ = ["card_digest", "check_card", "filled_from_card"]


def card_digest(card: dict[str, Any]) -> str:
    """``sha256:`` of the RFC 8785 canonical JSON of an AgentCard as registered: what an
    audit attestation's ``agentcard:`` subject names (custodes.audits)."""
    return "sha256:" + hashlib.sha256(canonical_dumps(card)).hexdigest()


def check_card(change: AgentRegister) -> list[str]:
    """Parse the attached card and verify its signatures; the kids that verified.

    A signed card must verify with at least one of ``agent_card_keys`` (403 otherwise);
    an unsigned card is accepted as the operator's own statement.
    """
    assert change.agent_card is not None
    card = parse_agent_card(orjson.dumps(change.agent_card))
    if not card.signatures:
        return []
    return verify_card_signatures(card.source_json, change.agent_card_keys or {})


def filled_from_card(change: AgentRegister) -> AgentRecord:
    """The registered record, with skills and interfaces from the card where it has none."""
    record = change.agent
    if change.agent_card is None:
        return record
    fields = registry_fields(
        parse_agent_card(orjson.dumps(change.agent_card)), record.aliases.a2a_card_url
    )
    update: dict[str, object] = {}
    if not record.skills:
        update["skills"] = tuple(Skill.model_validate(s) for s in fields["skills"])
    if not record.interfaces:
        update["interfaces"] = tuple(Interface.model_validate(i) for i in fields["interfaces"])
    return record.model_copy(update=update) if update else record
