"""A principal's relation to what it acts on or reads: the row of the authority table."""

from __future__ import annotations

from custodes.registry.authority import Relation
from custodes.registry.models import AgentRecord
from custodes.registry.principals import Principal

__all__ = ["to_agent", "to_model", "to_operator", "to_regulated"]


def to_regulated(principal: Principal | None, home: str, owner: str) -> Relation:
    """Relation to something whose home is ``home`` and whose operator is ``owner``."""
    if principal is None:
        return "public"
    if principal.role == "regulator":
        return "home_regulator" if principal.jurisdiction == home else "host_regulator"
    if principal.role == "operator":
        return "own_operator" if principal.id == owner else "other_operator"
    return "auditor" if principal.role == "auditor" else "public"


def to_agent(principal: Principal | None, agent: AgentRecord) -> Relation:
    return to_regulated(principal, agent.home_jurisdiction, agent.operator)


def to_operator(principal: Principal | None, operator_id: str, jurisdiction: str) -> Relation:
    # Operators are registered at their home node: another member's regulator is a host
    # here and may not register, change or read the private part of an operator.
    return to_regulated(principal, jurisdiction, operator_id)


def to_model(principal: Principal, home: str, holder: str | None) -> Relation:
    """Relation to a model held by ``holder`` (None: a new model, which its registrant holds)."""
    return to_regulated(principal, home, principal.id if holder is None else holder)
