"""GuardState, the guard's pure core: a table of leases, orders, territories and times."""

from __future__ import annotations

from typing import Any

import pytest

from custodes.sdk.leases import Lease, LeaseError
from custodes.sdk.state import GuardState, Halted, KillOrderError
from tests.sdk.support import AGENT

NBF, EXP, NOW = 1_000.0, 1_060.0, 1_030.0


def lease(**changes: Any) -> Lease:
    fields: dict[str, Any] = {
        "lease_id": "l1",
        "agent_id": AGENT,
        "keyid": "k" * 64,
        "jurisdictions": frozenset({"GB", "FR"}),
        "nbf": NBF,
        "exp": EXP,
        "issuer": "gb",
    }
    return Lease(**(fields | changes))


def order(op: str, order_id: str, territory: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "op": op,
        "order_id": order_id,
        "agent_id": AGENT,
        "scope": "territorial" if territory else "global",
        "territory": territory,
        "reason": "test",
        "actor": "regulator:gb",
        "at": 1_000,
        "lifts": None,
    } | extra


def suspend(order_id: str, territory: str | None = None) -> dict[str, Any]:
    return order("suspend", order_id, territory)


def reinstate(order_id: str, lifts: str, territory: str | None = None) -> dict[str, Any]:
    return order("reinstate", order_id, territory, lifts=lifts)


def state_with(held: Lease | None, orders: list[dict[str, Any]]) -> GuardState:
    state = GuardState(AGENT)
    if held is not None:
        state.on_lease(held)
    for index, item in enumerate(orders):
        state.on_order(item, index)
    return state


CASES = [
    ("no lease", None, [], "GB", NOW, "no_lease"),
    ("valid lease", lease(), [], "GB", NOW, None),
    ("valid lease, other leased territory", lease(), [], "FR", NOW, None),
    ("at nbf", lease(), [], "GB", NBF, None),
    ("just before exp", lease(), [], "GB", EXP - 0.001, None),
    ("at exp: no grace", lease(), [], "GB", EXP, "lease_expired"),
    ("after exp", lease(), [], "GB", EXP + 100, "lease_expired"),
    ("before nbf", lease(), [], "GB", NBF - 0.5, "lease_not_yet_valid"),
    ("territory not in lease", lease(), [], "DE", NOW, "territory_not_leased"),
    ("global suspend in GB", lease(), [suspend("s1")], "GB", NOW, "kill_order"),
    ("global suspend in FR", lease(), [suspend("s1")], "FR", NOW, "kill_order"),
    ("global suspend, no lease", None, [suspend("s1")], "GB", NOW, "kill_order"),
    ("territorial FR in FR", lease(), [suspend("s1", "FR")], "FR", NOW, "kill_order"),
    ("territorial FR in GB", lease(), [suspend("s1", "FR")], "GB", NOW, None),
    ("revoke global", lease(), [order("revoke", "r1")], "GB", NOW, "kill_order"),
    ("revoke in FR", lease(), [order("revoke", "r1", "FR")], "FR", NOW, "kill_order"),
    ("reinstate lifts", lease(), [suspend("s1"), reinstate("x1", "s1")], "GB", NOW, None),
    (
        "reinstate lifts only the named order",
        lease(),
        [suspend("s1"), suspend("s2", "FR"), reinstate("x1", "s2", "FR")],
        "GB",
        NOW,
        "kill_order",
    ),
    (
        "two orders, lift one: still halted",
        lease(),
        [suspend("s1"), order("revoke", "r2"), reinstate("x1", "s1")],
        "FR",
        NOW,
        "kill_order",
    ),
    (
        "a reinstate that arrives first still lifts",
        lease(),
        [reinstate("x1", "s1"), suspend("s1")],
        "GB",
        NOW,
        None,
    ),
    (
        "an order for another agent is ignored",
        lease(),
        [order("suspend", "s1", agent_id="urn:custodes:gb:agent:other")],
        "GB",
        NOW,
        None,
    ),
    (
        "expired lease and a kill order: the order",
        lease(),
        [suspend("s1")],
        "GB",
        EXP,
        "kill_order",
    ),
]


@pytest.mark.parametrize(
    ("held", "orders", "territory", "now", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_check(
    held: Lease | None,
    orders: list[dict[str, Any]],
    territory: str,
    now: float,
    reason: str | None,
) -> None:
    state = state_with(held, orders)
    if reason is None:
        state.check(territory, now)
        return
    with pytest.raises(Halted) as caught:
        state.check(territory, now)
    assert (caught.value.reason, caught.value.code, caught.value.status) == (reason, "halted", 403)
    assert caught.value.detail["reason"] == reason


@pytest.mark.parametrize(
    ("held", "orders", "now", "reason"),
    [
        (None, [], NOW, "no_lease"),
        (lease(), [], NOW, None),
        (lease(), [], EXP, "lease_expired"),
        (lease(), [], NBF - 1, "lease_not_yet_valid"),
        (lease(), [suspend("s1")], NOW, "kill_order"),
        (lease(), [suspend("s1", "FR")], NOW, None),
        (lease(), [suspend("s1", "FR"), suspend("s2", "GB")], NOW, "kill_order"),
        (lease(jurisdictions=frozenset()), [], NOW, "territory_not_leased"),
    ],
)
def test_halted_means_halted_everywhere(
    held: Lease | None, orders: list[dict[str, Any]], now: float, reason: str | None
) -> None:
    halt = state_with(held, orders).halted(now)
    assert (halt.reason if halt else None) == reason


def test_a_kill_order_refusal_names_the_order() -> None:
    state = state_with(lease(), [suspend("s1", "FR")])
    halt = state.refusal("FR", NOW)
    assert halt is not None
    assert halt.detail["orders"] == ["s1"]
    assert halt.territory == "FR"


def test_a_lease_older_than_the_one_held_is_refused() -> None:
    state = state_with(lease(), [])
    with pytest.raises(LeaseError):
        state.on_lease(lease(lease_id="old", nbf=NBF - 30, exp=EXP - 30, jurisdictions={"DE"}))
    assert state.lease is not None
    assert state.lease.lease_id == "l1"


def test_a_lease_for_another_agent_is_refused() -> None:
    with pytest.raises(LeaseError):
        GuardState(AGENT).on_lease(lease(agent_id="urn:custodes:gb:agent:other"))


def test_a_renewal_not_yet_valid_by_our_clock_leaves_no_gap() -> None:
    state = state_with(lease(), [])
    state.on_lease(lease(lease_id="l2", nbf=NOW + 2, exp=NOW + 62))  # node clock 2 s ahead
    state.check("GB", NOW)  # the previous lease still counts
    state.check("GB", NOW + 50)  # the new one once the old has run out
    with pytest.raises(Halted):
        state.check("GB", NOW + 62)


def test_a_fresh_lease_settles_orders_the_node_knew_were_lifted() -> None:
    # The reinstate was missed (stream down); the node issued a lease knowing every
    # order up to index 1, so the global and FR suspensions are over.
    state = state_with(lease(), [suspend("s1"), suspend("s2", "FR")])
    state.on_order(suspend("s3", "DE"), 2)
    state.on_lease(lease(lease_id="l2", nbf=NOW, exp=NOW + 60), horizon=1)
    state.check("GB", NOW)
    state.check("FR", NOW)
    assert [o.order_id for o in state.active_orders()] == ["s3"]


def test_a_fresh_lease_leaves_orders_newer_than_its_request() -> None:
    state = state_with(lease(), [])
    horizon = state.horizon
    state.on_order(suspend("s1"), 5)  # arrives while the lease request is in flight
    state.on_lease(lease(lease_id="l2", nbf=NOW, exp=NOW + 60), horizon=horizon)
    with pytest.raises(Halted):
        state.check("GB", NOW)


def test_a_fresh_lease_keeps_a_territorial_order_for_a_territory_it_does_not_cover() -> None:
    state = state_with(lease(), [suspend("s1", "FR")])
    state.on_lease(lease(lease_id="l2", nbf=NOW, jurisdictions=frozenset({"GB"})), horizon=0)
    assert [o.order_id for o in state.active_orders()] == ["s1"]


def test_next_change_is_the_next_lease_edge() -> None:
    state = state_with(lease(), [])
    assert state.next_change(NBF - 10) == NBF
    assert state.next_change(NOW) == EXP
    assert state.next_change(EXP) == float("inf")


@pytest.mark.parametrize(
    "bad",
    [
        {"op": "pause"},
        {"scope": "everywhere"},
        {"scope": "territorial", "territory": None},
        {"op": "reinstate", "lifts": None},
        {"order_id": ""},
        {"agent_id": None},
    ],
)
def test_an_unreadable_order_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(KillOrderError):
        GuardState(AGENT).on_order(suspend("s1") | bad, 0)


def test_an_order_for_another_agent_leaves_the_horizon() -> None:
    # It says nothing about what the node knew of this agent's orders when it leased.
    state = state_with(lease(), [])
    state.on_order(order("suspend", "x1", agent_id="urn:custodes:gb:agent:other"), 10**9)
    horizon = state.horizon  # a renewal asks now
    assert horizon == -1
    state.on_order(suspend("s1", "FR"), 5)  # arrives while the request is in flight
    state.on_lease(lease(lease_id="l2", nbf=NOW, exp=NOW + 60), horizon=horizon)
    assert [o.order_id for o in state.active_orders()] == ["s1"]
