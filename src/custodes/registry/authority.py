"""Who may do what to whom: the alliance's authority rules, written once.

Each row names a principal's *relation* to the thing acted on and what it may do::

    relation          register/update/rotate  suspend         revoke   reinstate
    home_regulator    yes                     anywhere        anywhere any order
    host_regulator    no                      own territory   no       its own orders
    own_operator      yes (own agents)        yes (own agent) no       its own orders
    other_operator    no                      no              no       no
    auditor, agent, public: no registry or order action at all

Regulated fields and models (the operator of a model is the one holding it)::

    relation          agent.update.regulated  model.register/update/retire
    home_regulator    yes                     yes (correct or retire any model)
    own_operator      no                      yes (models it holds; a new id is its own)
    everyone else     no                      no

Reads (``read:private`` scope needed as well; without it, the public view)::

    relation          agent.read (restricted)  agent.read.private  operator.read.private
    home_regulator    yes                      yes                 yes
    host_regulator    yes                      own territory       no
    own_operator      yes                      yes                 yes (itself)
    other_operator    no                       no                  no
    auditor           yes                      no                  no
    agent, public     no                       no                  no

"Restricted" is the full logged record (aliases, interfaces, model, keys); "private" is
the clear text kept beside the log (contacts, the operator's address). A host regulator
may read an agent's accountable contact only when the agent operates in its territory:
that is whom it must reach when it suspends it there. The operator's own address and
desk stay with its home regulator.

Selector orders (one order, many agents) follow the same cells: a principal may halt by
selector only agents it may halt one by one. ``decide_over`` applies the cell for each
relation the principal has to the covered agents and refuses the whole order, naming how
many agents it may not halt and one of them, when any cell denies (no partial orders:
what a regulator signed is what the log says happened).

``decide`` answers one question from this table; tests/registry/test_authority.py
checks every role x action x relation cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from custodes.errors import AuthError

__all__ = [
    "ACTIONS",
    "ORDER_RIGHTS",
    "RELATIONS",
    "Action",
    "Relation",
    "Rule",
    "decide",
    "decide_over",
    "require",
    "require_order_right",
]

Action = Literal[
    "agent.register",
    "agent.update",
    "agent.update.regulated",
    "agent.rotate_key",
    "operator.register",
    "operator.update",
    "model.register",
    "model.update",
    "model.retire",
    "order.suspend.global",
    "order.suspend.territorial",
    "order.revoke.global",
    "order.revoke.territorial",
    "order.reinstate",
    "agent.read",
    "agent.read.private",
    "operator.read.private",
]
Relation = Literal[
    "home_regulator",
    "host_regulator",
    "own_operator",
    "other_operator",
    "auditor",
    "agent",
    "public",
]
Rule = Literal["allow", "own_territory", "own_order", "deny"]

ACTIONS: tuple[Action, ...] = (
    "agent.register",
    "agent.update",
    "agent.update.regulated",
    "agent.rotate_key",
    "operator.register",
    "operator.update",
    "model.register",
    "model.update",
    "model.retire",
    "order.suspend.global",
    "order.suspend.territorial",
    "order.revoke.global",
    "order.revoke.territorial",
    "order.reinstate",
    "agent.read",
    "agent.read.private",
    "operator.read.private",
)
RELATIONS: tuple[Relation, ...] = (
    "home_regulator",
    "host_regulator",
    "own_operator",
    "other_operator",
    "auditor",
    "agent",
    "public",
)

_HOME: dict[Action, Rule] = dict.fromkeys(ACTIONS, "allow")
_HOST: dict[Action, Rule] = {
    "order.suspend.territorial": "own_territory",
    "order.reinstate": "own_order",
    "agent.read": "allow",
    "agent.read.private": "own_territory",
}
_OPERATOR: dict[Action, Rule] = {
    "agent.register": "allow",
    "agent.update": "allow",
    "agent.rotate_key": "allow",
    "operator.update": "allow",
    "model.register": "allow",
    "model.update": "allow",
    "model.retire": "allow",
    "order.suspend.global": "allow",
    "order.suspend.territorial": "allow",
    "order.reinstate": "own_order",
    "agent.read": "allow",
    "agent.read.private": "allow",
    "operator.read.private": "allow",
}
_AUDITOR: dict[Action, Rule] = {"agent.read": "allow"}
TABLE: dict[Relation, dict[Action, Rule]] = {
    "home_regulator": _HOME,
    "host_regulator": _HOST,
    "own_operator": _OPERATOR,
    "auditor": _AUDITOR,
}


_WHO: dict[str, str] = {
    "home_regulator": "the agent's home regulator",
    "host_regulator": "a host regulator (not the agent's home)",
    "own_operator": "the agent's operator",
    "other_operator": "an operator of other agents",
    "auditor": "an auditor",
    "agent": "an agent",
    "public": "the public",
}
_WHAT: dict[str, str] = {
    "agent.register": "register this agent",
    "agent.update": "change this agent's record",
    "agent.update.regulated": "change this agent's risk tier, autonomy or territories",
    "agent.rotate_key": "rotate this agent's keys",
    "operator.register": "register this operator",
    "operator.update": "change this operator's record",
    "model.register": "register models here",
    "model.update": "change this model's record",
    "model.retire": "retire this model",
    "order.suspend.global": "suspend this agent globally",
    "order.suspend.territorial": "suspend this agent in that territory",
    "order.revoke.global": "revoke this agent",
    "order.revoke.territorial": "revoke this agent",
    "order.reinstate": "lift this order",
    "agent.read": "read this agent's full record",
    "agent.read.private": "read this agent's private fields",
    "operator.read.private": "read this operator's private fields",
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def decide(
    relation: Relation,
    action: Action,
    *,
    territory: str | None = None,
    principal_jurisdiction: str | None = None,
    issued_by_principal: bool = False,
) -> Decision:
    """May a principal with ``relation`` to the target perform ``action``?"""
    rule = TABLE.get(relation, {}).get(action, "deny")
    if rule == "allow":
        return Decision(True, f"{relation} may {action}")
    if rule == "own_territory":
        ok = territory is not None and territory == principal_jurisdiction
        return Decision(
            ok,
            f"{relation} may {action} only in its own territory "
            f"({principal_jurisdiction}), not {territory}",
        )
    if rule == "own_order":
        return Decision(issued_by_principal, f"{relation} may lift only orders it issued")
    who, what = _WHO.get(relation, relation), _WHAT.get(action, action)
    return Decision(False, f"{who} ({relation}) may not {what} ({action})")


def decide_over(
    cells: Mapping[Relation, tuple[int, str]],
    action: Action,
    *,
    territory: str | None = None,
    principal_jurisdiction: str | None = None,
    issued_by_principal: bool = False,
) -> Decision:
    """May a principal perform ``action`` on every agent an order covers?

    ``cells`` maps each relation the principal has to the covered agents to how many
    agents stand in it and one of them (for the message).
    """
    for relation in sorted(cells):
        found = decide(
            relation,
            action,
            territory=territory,
            principal_jurisdiction=principal_jurisdiction,
            issued_by_principal=issued_by_principal,
        )
        if not found.allowed:
            count, example = cells[relation]
            return Decision(
                False,
                f"{found.reason}; the order covers {count} such agent(s), e.g. {example}: "
                "narrow the selector to agents you may halt",
            )
    return Decision(True, f"may {action} every covered agent")


def require(decision: Decision) -> None:
    """Raise a 403 the caller can act on when ``decision`` denies."""
    if not decision.allowed:
        raise AuthError(
            decision.reason[0].upper() + decision.reason[1:], code="forbidden", status=403
        )


# Roster rights (docs/design/0023): a partner of the alliance takes part in look-ups and
# threat intelligence but issues no kill orders; a member's regulator does.
ORDER_RIGHTS: dict[str, bool] = {"member": True, "partner": False}


def require_order_right(jurisdiction: str, party_status: str | None) -> None:
    """Refuse (403) a kill order by a regulator of a partner party; ``party_status`` is
    its party's status on the roster in force (None: no roster, or not on it)."""
    if party_status is not None and not ORDER_RIGHTS.get(party_status, False):
        raise AuthError(
            f"regulators of {jurisdiction} ({party_status} of the alliance) may not issue "
            "kill orders; ask a member's regulator to issue it",
            code="partner_no_orders",
            status=403,
        )
