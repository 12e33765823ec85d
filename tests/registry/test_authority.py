"""The authority rules as a full relation x action table (design note 0004).

The expected table is written out here, by hand, from the design note, and never derived
from ``custodes.registry.authority``: a change to the rules must change this table too.
"""

from __future__ import annotations

from typing import Any

import pytest

from custodes.errors import AuthError
from custodes.registry.authority import ACTIONS, RELATIONS, decide, decide_over, require

# Y  allowed, whatever the territory or the order's issuer
# -  denied, even in the principal's own territory and for its own orders
# T  allowed only in the principal's own territory (for reads: one the agent operates in)
# O  allowed only for orders the principal issued itself
COLUMNS = (
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
# "regd" is agent.update.regulated (risk tier, autonomy, territories); the read columns
# are the restricted agent record, the agent's private fields, the operator's.
#                     agent             operator  model        suspend  revoke   rein  read
#                     reg upd regd rot  reg upd   reg upd ret  glob ter glob ter      agt prv op
EXPECTED = {
    "home_regulator": "Y   Y   Y    Y    Y   Y     Y   Y   Y    Y    Y   Y    Y   Y    Y   Y   Y",
    "host_regulator": "-   -   -    -    -   -     -   -   -    -    T   -    -   O    Y   T   -",
    "own_operator": "  Y   Y   -    Y    -   Y     Y   Y   Y    Y    Y   -    -   O    Y   Y   Y",
    "other_operator": "-   -   -    -    -   -     -   -   -    -    -   -    -   -    -   -   -",
    "auditor": "       -   -   -    -    -   -     -   -   -    -    -   -    -   -    Y   -   -",
    "agent": "         -   -   -    -    -   -     -   -   -    -    -   -    -   -    -   -   -",
    "public": "        -   -   -    -    -   -     -   -   -    -    -   -    -   -    -   -   -",
}
CELLS = [
    (relation, action, mark)
    for relation, row in EXPECTED.items()
    for action, mark in zip(COLUMNS, row.split(), strict=True)
]

# Every context a cell is tried in: (territory, principal's jurisdiction, own order).
CONTEXTS: list[dict[str, Any]] = [
    {"territory": None, "principal_jurisdiction": None, "issued_by_principal": False},
    {"territory": "FR", "principal_jurisdiction": "FR", "issued_by_principal": False},
    {"territory": "DE", "principal_jurisdiction": "FR", "issued_by_principal": False},
    {"territory": None, "principal_jurisdiction": "FR", "issued_by_principal": True},
    {"territory": "FR", "principal_jurisdiction": "FR", "issued_by_principal": True},
]


def _expected(mark: str, context: dict[str, Any]) -> bool:
    if mark == "T":
        return context["territory"] is not None and (
            context["territory"] == context["principal_jurisdiction"]
        )
    if mark == "O":
        return bool(context["issued_by_principal"])
    return mark == "Y"


def test_the_table_covers_every_relation_and_action() -> None:
    assert tuple(EXPECTED) == RELATIONS
    assert COLUMNS == ACTIONS
    assert len(CELLS) == len(RELATIONS) * len(ACTIONS)


@pytest.mark.parametrize(
    ("relation", "action", "mark"),
    [pytest.param(*cell, id=f"{cell[0]}-{cell[1]}") for cell in CELLS],
)
def test_authority_cell(relation: Any, action: Any, mark: str) -> None:
    for context in CONTEXTS:
        decision = decide(relation, action, **context)
        assert decision.allowed is _expected(mark, context), (relation, action, context)
        assert decision.reason


@pytest.mark.parametrize(
    ("territory", "allowed"),
    [
        pytest.param("FR", True, id="own-territory"),
        pytest.param("DE", False, id="another-territory"),
        pytest.param("ZZ", False, id="the-agents-home"),
        pytest.param(None, False, id="no-territory"),
    ],
)
def test_host_regulator_suspends_only_in_its_own_territory(
    territory: str | None, allowed: bool
) -> None:
    decision = decide(
        "host_regulator",
        "order.suspend.territorial",
        territory=territory,
        principal_jurisdiction="FR",
    )
    assert decision.allowed is allowed
    if not allowed:
        assert "own territory" in decision.reason


def test_home_regulator_suspends_in_any_territory() -> None:
    for territory in ("FR", "DE", "ZZ"):
        assert decide(
            "home_regulator",
            "order.suspend.territorial",
            territory=territory,
            principal_jurisdiction="ZZ",
        ).allowed


@pytest.mark.parametrize(
    ("relation", "own", "allowed"),
    [
        pytest.param("home_regulator", True, True, id="home-own-order"),
        pytest.param("home_regulator", False, True, id="home-anyones-order"),
        pytest.param("host_regulator", True, True, id="host-own-order"),
        pytest.param("host_regulator", False, False, id="host-others-order"),
        pytest.param("own_operator", True, True, id="operator-own-order"),
        pytest.param("own_operator", False, False, id="operator-regulators-order"),
        pytest.param("other_operator", True, False, id="other-operator"),
        pytest.param("auditor", True, False, id="auditor"),
    ],
)
def test_reinstate_lifts_own_orders_only_except_for_the_home_regulator(
    relation: Any, own: bool, allowed: bool
) -> None:
    assert decide(relation, "order.reinstate", issued_by_principal=own).allowed is allowed


def test_a_denial_is_a_403_that_says_who_may_not_do_what() -> None:
    with pytest.raises(AuthError) as caught:
        require(decide("host_regulator", "order.revoke.global"))
    assert caught.value.status == 403
    assert caught.value.code == "forbidden"
    assert "host_regulator" in caught.value.message.lower()
    assert "order.revoke.global" in caught.value.message
    assert "may not revoke this agent" in caught.value.message
    require(decide("home_regulator", "order.revoke.global"))  # allowed: no error


# -- orders by selector: the same cells, over every agent covered ----------------------


@pytest.mark.parametrize(
    ("cells", "action", "allowed"),
    [
        pytest.param({"home_regulator": (9, "a")}, "order.revoke.global", True, id="home-all"),
        pytest.param(
            {"own_operator": (2, "a"), "other_operator": (1, "b")},
            "order.suspend.global",
            False,
            id="operator-with-others-agents",
        ),
        pytest.param({"own_operator": (3, "a")}, "order.suspend.global", True, id="operator-own"),
        pytest.param({"host_regulator": (3, "a")}, "order.suspend.global", False, id="host-global"),
        pytest.param(
            {"home_regulator": (1, "a"), "auditor": (1, "b")},
            "order.suspend.global",
            False,
            id="auditor-cell",
        ),
        pytest.param({}, "order.suspend.global", True, id="nothing-covered"),
    ],
)
def test_a_selector_order_is_allowed_only_when_every_cell_is(
    cells: Any, action: Any, allowed: bool
) -> None:
    assert decide_over(cells, action).allowed is allowed


def test_a_selector_refusal_counts_the_agents_and_names_one() -> None:
    found = decide_over(
        {"host_regulator": (120, "urn:custodes:zz:agent:x")},
        "order.suspend.territorial",
        territory="DE",
        principal_jurisdiction="FR",
    )
    assert not found.allowed
    assert "covers 120 such agent(s), e.g. urn:custodes:zz:agent:x" in found.reason
    assert "narrow the selector" in found.reason
    here = decide_over(
        {"host_regulator": (120, "x")},
        "order.suspend.territorial",
        territory="FR",
        principal_jurisdiction="FR",
    )
    assert here.allowed
