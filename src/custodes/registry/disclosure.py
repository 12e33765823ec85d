"""Who may read a committed decision's clear text, and who may erase it: one table.

A decision record's clear text stays at the agent's home node (custodes.ledger.commitments).
It is shown to the home regulator; to a host regulator when the record names its
jurisdiction or a counterparty homed there; to the agent's own operator. Everyone else
(the public, other operators, auditors, other regulators) sees the commitment. Only the
home regulator may erase it, on a legal request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from custodes.registry.principals import Principal

__all__ = [
    "CLEAR",
    "ERASE",
    "DecisionRelation",
    "home_of",
    "may_erase",
    "may_read_clear",
    "relation_to_decision",
]

DecisionRelation = Literal[
    "public",
    "home_regulator",
    "host_regulator_named",
    "host_regulator_other",
    "own_operator",
    "other_operator",
    "auditor",
]

# Who is shown the clear record (True) or only its commitment (False).
CLEAR: dict[DecisionRelation, bool] = {
    "public": False,
    "home_regulator": True,
    "host_regulator_named": True,
    "host_regulator_other": False,
    "own_operator": True,
    "other_operator": False,
    "auditor": False,
}

# Who may erase the clear record on a legal request.
ERASE: dict[DecisionRelation, bool] = {
    "public": False,
    "home_regulator": True,
    "host_regulator_named": False,
    "host_regulator_other": False,
    "own_operator": False,
    "other_operator": False,
    "auditor": False,
}

_AGENT_HOME = re.compile(r"^urn:custodes:([a-z]{2,8}):")


def home_of(party_id: str) -> str | None:
    """The home jurisdiction an alliance id names (``urn:custodes:<jur>:...``), upper case."""
    found = _AGENT_HOME.match(party_id)
    return None if found is None else found.group(1).upper()


def relation_to_decision(
    reader: Principal | None,
    *,
    home: str,
    operator: str,
    named: Iterable[str] = (),
) -> DecisionRelation:
    """``reader``'s relation to a decision of an agent homed in ``home`` run by
    ``operator``; ``named``: the jurisdictions the record names (its ``jurisdiction`` and
    its counterparties' homes)."""
    if reader is None:
        return "public"
    if reader.role == "regulator":
        if reader.jurisdiction == home:
            return "home_regulator"
        named_here = reader.jurisdiction in set(named)
        return "host_regulator_named" if named_here else "host_regulator_other"
    if reader.role == "operator":
        return "own_operator" if reader.id == operator else "other_operator"
    return "auditor" if reader.role == "auditor" else "public"


def may_read_clear(relation: DecisionRelation) -> bool:
    return CLEAR[relation]


def may_erase(relation: DecisionRelation) -> bool:
    return ERASE[relation]
