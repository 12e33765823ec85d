"""Roster rights, spelled out: whose regulators may issue kill orders."""

from __future__ import annotations

import pytest

from custodes.errors import AuthError
from custodes.registry.authority import require_order_right


@pytest.mark.parametrize(
    ("status", "may_order"),
    [
        ("member", True),
        ("partner", False),  # the UK-Australia memorandum: look-ups, no orders
        ("suspended", False),
        ("removed", False),
        (None, True),  # no roster, or a regulator this node's admin registered itself
    ],
)
def test_who_may_issue_kill_orders(status: str | None, may_order: bool) -> None:
    if may_order:
        require_order_right("GB", status)
        return
    with pytest.raises(AuthError) as refused:
        require_order_right("AU", status)
    assert (refused.value.code, refused.value.status) == ("partner_no_orders", 403)
