"""Kill orders by selector on SQLite and PostgreSQL: who is covered, who may, and replay.

Each test registers agents of its own in a sector no other test uses, so a selector it
issues covers exactly the agents it made, whatever the other modules' tests left.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from custodes.errors import CustodesError
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope
from custodes.registry import rebuild
from custodes.registry.models import KillOrder, ModelRecord, ModelRegister, Selector, Skill
from custodes.registry.queries import NODE
from custodes.registry.service import IssuedOrder
from tests.registry.support import (
    HOST,
    OTHER,
    World,
    fresh_slug,
    issue,
    now,
    register_agent,
    registry_state,
    submit,
)


def _agents(world: World, count: int, **fields: Any) -> list[str]:
    return [register_agent(world, EnvelopeSigner.generate(), **fields) for _ in range(count)]


def _status(world: World, agent_id: str) -> tuple[str, list[str]]:
    answer = world.node.queries.agent(agent_id, reader=NODE)
    return answer["status"], answer["suspended_in"]


def _covered(issued: IssuedOrder) -> list[str]:
    return [agent for agent, _operator in issued.covered]


def _refused(world: World, call: Any, status: int, code: str) -> str:
    before = registry_state(world.node)
    with pytest.raises(CustodesError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.message
    assert registry_state(world.node) == before  # nothing logged, nothing projected
    return caught.value.message


# -- matching -------------------------------------------------------------------------


def test_each_selector_kind_covers_exactly_its_agents(world: World) -> None:
    sector = fresh_slug("kinds")
    plain = _agents(world, 2, sector=sector)
    in_host = _agents(world, 2, sector=sector, operating_jurisdictions=(HOST,))
    skilled = _agents(world, 1, sector=sector, skills=(Skill(id="fx-swap", name="FX"),))
    globex = _agents(world, 1, sector=sector, operator="operator:globex", by=world.globex)
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({}, plain + in_host + skilled + globex),
        ({"jurisdiction": HOST}, in_host),
        ({"skill": "fx-swap"}, skilled),
        ({"operator": "operator:globex"}, globex),
    ]
    for fields, expected in cases:
        issued = issue(
            world.node, world.home, "suspend", selector=Selector(sector=sector, **fields)
        )
        assert _covered(issued) == sorted(expected), fields
        issue(world.node, world.home, "reinstate", lifts=issued.order.order_id)


def test_a_model_and_its_version_select_the_agents_running_it(world: World) -> None:
    slug = fresh_slug("llm")
    vulnerable = ModelRecord(
        id=f"model:{slug}",
        provider="Example Labs",
        name=slug,
        version="2.1",
        digest="sha256:" + "ab" * 32,
        training_compute_flop=1e23,
    )
    submit(world.node, world.acme, ModelRegister(actor=world.acme.id, at=now(), model=vulnerable))
    sector = fresh_slug("models")
    on_model = _agents(world, 3, sector=sector, model=vulnerable.id)
    _agents(world, 2, sector=sector)  # no model named
    issued = issue(world.node, world.home, "suspend", selector=Selector(model=vulnerable.id))
    assert _covered(issued) == sorted(on_model)
    issue(world.node, world.home, "reinstate", lifts=issued.order.order_id)
    both = Selector(model=vulnerable.id, model_version="2.1", sector=sector)
    assert _covered(issue(world.node, world.home, "suspend", selector=both)) == sorted(on_model)
    _refused(
        world,
        lambda: issue(
            world.node,
            world.home,
            "suspend",
            selector=Selector(model=vulnerable.id, model_version="9"),
        ),
        404,
        "no_matching_agents",
    )


def test_a_selector_matching_no_agent_is_refused_and_logs_nothing(world: World) -> None:
    message = _refused(
        world,
        lambda: issue(world.node, world.home, "suspend", selector=Selector(sector="nowhere")),
        404,
        "no_matching_agents",
    )
    assert "matches no registered agent" in message


@pytest.mark.parametrize(
    "fields",
    [
        {"agent_id": "urn:custodes:zz:agent:a", "selector": {"sector": "finance"}},
        {},
        {"selector": {}},
        {"selector": {"sector": "finance", "colour": "red"}},
    ],
)
def test_an_order_names_one_agent_or_a_non_empty_selector(fields: dict[str, Any]) -> None:
    base = {"op": "suspend", "order_id": "order-0001", "reason": "r", "actor": "a", "at": now()}
    with pytest.raises(ValueError, match=r"validation error"):
        KillOrder.model_validate(base | fields)


def test_an_order_logged_before_selectors_still_reads() -> None:
    old = (
        b'{"v":1,"op":"suspend","order_id":"order-0001","agent_id":"urn:custodes:zz:agent:a",'
        b'"scope":"global","territory":null,"reason":"r","actor":"regulator:zz",'
        b'"at":"2026-01-01T00:00:00Z","lifts":null}'
    )
    order = KillOrder.model_validate_json(old)
    assert (order.agent_id, order.selector) == ("urn:custodes:zz:agent:a", None)


# -- status ---------------------------------------------------------------------------


def test_statuses_follow_every_order_covering_an_agent(world: World) -> None:
    sector = fresh_slug("status")
    first, second = _agents(world, 2, sector=sector, operating_jurisdictions=(HOST,))
    single = issue(world.node, world.home, "suspend", agent_id=first)
    by_selector = issue(world.node, world.home, "suspend", selector=Selector(sector=sector))
    assert [_status(world, a)[0] for a in (first, second)] == ["suspended", "suspended"]
    issue(world.node, world.home, "reinstate", lifts=by_selector.order.order_id)
    assert [_status(world, a)[0] for a in (first, second)] == ["suspended", "active"]
    issue(world.node, world.home, "reinstate", agent_id=first, lifts=single.order.order_id)
    territorial = issue(
        world.node,
        world.host,
        "suspend",
        selector=Selector(sector=sector, jurisdiction=HOST),
        territory=HOST,
    )
    assert _status(world, second) == ("active", [HOST])
    assert {o["order_id"] for o in world.node.queries.orders(second, active_only=True)} == {
        territorial.order.order_id
    }
    revoked = issue(world.node, world.home, "revoke", selector=Selector(sector=sector))
    assert _status(world, first) == ("revoked", ["*", HOST])  # halted everywhere
    assert world.node.registry.halt_recorded(first) is None  # a revocation it may record
    issue(world.node, world.home, "suspend", selector=Selector(sector=sector))
    assert _status(world, first)[0] == "revoked"  # a suspension never softens a revocation
    issue(world.node, world.home, "reinstate", lifts=revoked.order.order_id)
    assert _status(world, first)[0] == "suspended"


def test_an_agent_registered_after_the_order_is_not_covered(world: World) -> None:
    sector = fresh_slug("late")
    early = _agents(world, 2, sector=sector)
    issued = issue(world.node, world.home, "suspend", selector=Selector(sector=sector))
    (late,) = _agents(world, 1, sector=sector)
    assert _status(world, late)[0] == "active"
    assert world.node.queries.order_agents(issued.order.order_id)["agents"] == sorted(early)
    lifted = issue(world.node, world.home, "reinstate", lifts=issued.order.order_id)
    assert _covered(lifted) == sorted(early)
    report = rebuild(world.node.store)  # the replay resolves the selector at its index
    assert report.equal, report.tables


def test_reinstating_a_selector_order_names_no_agent(world: World) -> None:
    sector = fresh_slug("lift")
    (agent,) = _agents(world, 1, sector=sector)
    issued = issue(world.node, world.home, "suspend", selector=Selector(sector=sector))
    _refused(
        world,
        lambda: issue(
            world.node, world.home, "reinstate", agent_id=agent, lifts=issued.order.order_id
        ),
        404,
        "unknown_order",
    )


# -- authority ------------------------------------------------------------------------


def test_a_host_regulator_halts_by_selector_only_in_its_territory(world: World) -> None:
    sector = fresh_slug("host")
    _agents(world, 2, sector=sector, operating_jurisdictions=(HOST,))
    selector = Selector(sector=sector)
    message = _refused(
        world, lambda: issue(world.node, world.host, "suspend", selector=selector), 403, "forbidden"
    )
    assert "covers 2 such agent(s)" in message
    _refused(
        world,
        lambda: issue(world.node, world.host, "suspend", selector=selector, territory=OTHER),
        403,
        "forbidden",
    )
    issued = issue(world.node, world.host, "suspend", selector=selector, territory=HOST)
    assert len(issued.covered) == 2


def test_an_operator_halts_by_selector_only_its_own_agents(world: World) -> None:
    sector = fresh_slug("ops")
    mine = _agents(world, 2, sector=sector)
    _agents(world, 1, sector=sector, operator="operator:globex", by=world.globex)
    message = _refused(
        world,
        lambda: issue(world.node, world.acme, "suspend", selector=Selector(sector=sector)),
        403,
        "forbidden",
    )
    assert "covers 1 such agent(s)" in message
    own = Selector(sector=sector, operator="operator:acme")
    issued = issue(world.node, world.acme, "suspend", selector=own)
    assert _covered(issued) == sorted(mine)
    _refused(world, lambda: issue(world.node, world.acme, "revoke", selector=own), 403, "forbidden")
    issue(world.node, world.acme, "reinstate", lifts=issued.order.order_id)


def test_an_auditor_issues_no_selector_order(world: World) -> None:
    sector = fresh_slug("audit")
    _agents(world, 1, sector=sector)
    _refused(
        world,
        lambda: issue(world.node, world.auditor, "suspend", selector=Selector(sector=sector)),
        403,
        "missing_scope",
    )


def test_only_the_issuer_or_the_home_regulator_lifts_a_selector_order(world: World) -> None:
    sector = fresh_slug("issuer")
    _agents(world, 2, sector=sector, operating_jurisdictions=(HOST,))
    issued = issue(
        world.node, world.host, "suspend", selector=Selector(sector=sector), territory=HOST
    )
    lift = issued.order.order_id
    _refused(
        world,
        lambda: issue(world.node, world.acme, "reinstate", lifts=lift),
        403,
        "forbidden",
    )
    issue(world.node, world.home, "reinstate", lifts=lift)


# -- bursts ---------------------------------------------------------------------------


def test_a_burst_of_orders_is_logged_each_with_its_own_index(world: World) -> None:
    sector = fresh_slug("burst")
    agents = _agents(world, 40, sector=sector)
    missing = "urn:custodes:zz:agent:never-registered"
    targets = [*agents, missing, *agents[:10]]  # one unknown agent, ten suspended twice
    answers: dict[int, IssuedOrder | CustodesError] = {}
    start = threading.Barrier(len(targets))

    def send(position: int, agent_id: str) -> None:
        start.wait()
        try:
            answers[position] = issue(world.node, world.home, "suspend", agent_id=agent_id)
        except CustodesError as exc:
            answers[position] = exc

    threads = [threading.Thread(target=send, args=p) for p in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = {p: a for p, a in answers.items() if isinstance(a, CustodesError)}
    assert [(p, a.code) for p, a in refused.items()] == [(40, "unknown_agent")]
    issued = [a for a in answers.values() if isinstance(a, IssuedOrder)]
    indices = [a.index for a in issued]
    assert len(set(indices)) == len(targets) - 1
    logged = {o["order_id"]: o["issued_index"] for o in world.node.queries.orders()}
    assert all(logged[a.order.order_id] == a.index for a in issued)
    with world.node.store.engine.connect() as conn:
        stored = {
            a.index: world.node.store.entry_data(conn, a.index, a.index + 1)[0] for a in issued
        }
    payloads = {i: parse_envelope(orjson.loads(d)).payload for i, d in stored.items()}
    assert all(KillOrder.model_validate_json(payloads[a.index]) == a.order for a in issued)
    assert {_status(world, a)[0] for a in agents} == {"suspended"}
