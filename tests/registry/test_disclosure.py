"""Who reads a committed decision in clear, and who may erase it: every cell by hand."""

from __future__ import annotations

import pytest

from custodes.registry.disclosure import (
    CLEAR,
    ERASE,
    DecisionRelation,
    home_of,
    may_erase,
    may_read_clear,
    relation_to_decision,
)
from custodes.registry.principals import Principal

# relation: (shown in clear, may erase)
MATRIX: dict[str, tuple[bool, bool]] = {
    "public": (False, False),
    "home_regulator": (True, True),
    "host_regulator_named": (True, False),
    "host_regulator_other": (False, False),
    "own_operator": (True, False),
    "other_operator": (False, False),
    "auditor": (False, False),
}


def test_the_tables_cover_every_relation_and_nothing_else() -> None:
    assert set(CLEAR) == set(ERASE) == set(MATRIX)


@pytest.mark.parametrize(("relation", "expected"), sorted(MATRIX.items()))
def test_every_cell(relation: DecisionRelation, expected: tuple[bool, bool]) -> None:
    assert (may_read_clear(relation), may_erase(relation)) == expected


def who(role: str, jurisdiction: str = "GB", pid: str = "someone") -> Principal:
    return Principal(pid, role, jurisdiction, pid, "0" * 64)


@pytest.mark.parametrize(
    ("reader", "named", "relation"),
    [
        (None, (), "public"),
        (who("regulator", "GB"), (), "home_regulator"),
        (who("regulator", "FR"), ("FR",), "host_regulator_named"),
        (who("regulator", "FR"), ("DE",), "host_regulator_other"),
        (who("regulator", "FR"), (), "host_regulator_other"),
        (who("operator", pid="operator:acme"), (), "own_operator"),
        (who("operator", pid="operator:other"), (), "other_operator"),
        (who("auditor"), ("GB",), "auditor"),
    ],
)
def test_a_readers_relation_to_a_decision(
    reader: Principal | None, named: tuple[str, ...], relation: str
) -> None:
    found = relation_to_decision(reader, home="GB", operator="operator:acme", named=named)
    assert found == relation


def test_the_home_is_read_from_an_alliance_id() -> None:
    assert home_of("urn:custodes:gb:agent:a1") == "GB"
    assert home_of("not-an-alliance-id") is None
