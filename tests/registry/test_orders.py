"""Kill orders over the API on SQLite and PostgreSQL: suspend, revoke, reinstate.

Orders are issued with custodes.client.Client (signed by the actor, sent with its
token). Refusals write nothing. The server-sent-events push is tested in
tests/integration.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from custodes.client import Client
from custodes.errors import CustodesError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.registry.models import Selector
from custodes.registry.queries import NODE
from custodes.sdk.decisions import sign_committed_decision, sign_decision
from tests.registry.support import (
    HOST,
    OTHER,
    World,
    client_for,
    decision,
    fresh_slug,
    register_agent,
    registry_state,
)


@pytest.fixture(scope="module")
def clients(app_client: TestClient, app_world: World) -> dict[str, Client]:
    w = app_world
    return {
        name: client_for(app_client, actor)
        for name, actor in (("home", w.home), ("host", w.host), ("acme", w.acme))
    }


def _agent(world: World) -> tuple[str, EnvelopeSigner]:
    key = EnvelopeSigner.generate()
    return register_agent(world, key, operating_jurisdictions=(HOST, OTHER)), key


def _state(world: World, agent_id: str) -> tuple[str, list[str]]:
    answer = world.node.queries.agent(agent_id, reader=NODE)
    return answer["status"], answer["suspended_in"]


def _orders(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/kill-orders", params=params)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


def _refused(world: World, call: Any, status: int, code: str) -> None:
    before = registry_state(world.node)
    with pytest.raises(CustodesError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.message
    assert registry_state(world.node) == before


def _append(client: TestClient, key: EnvelopeSigner, agent_id: str, n: int) -> Any:
    body = canonical_dumps(decision(key, agent_id, n))
    return client.post(
        "/api/v1/entries", content=body, headers={"Content-Type": "application/json"}
    )


def test_a_global_suspension_halts_the_agent_until_reinstated(
    app_client: TestClient, app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, _ = _agent(app_world)
    home = clients["home"]
    suspended = home.order("suspend", agent_id, "erratic trading", order_id="susp-global-1")
    assert suspended["agent_id"] == agent_id
    assert (suspended["order_id"], suspended["status"]) == ("susp-global-1", "suspended")
    assert _state(app_world, agent_id) == ("suspended", ["*"])  # everywhere
    assert app_world.node.registry.status(agent_id) == "suspended"

    lifted = home.order("reinstate", agent_id, "fixed", lifts="susp-global-1")
    assert lifted["status"] == "active"
    assert _state(app_world, agent_id) == ("active", [])
    listed = {o["order_id"]: o for o in _orders(app_client, agent_id=agent_id)}
    assert listed["susp-global-1"] == {
        "order_id": "susp-global-1",
        "agent_id": agent_id,
        "op": "suspend",
        "scope": "global",
        "territory": None,
        "reason": "erratic trading",
        "authority": "regulator:zz",
        "status": "lifted",
        "issued_index": suspended["index"],
        "lifted_index": lifted["index"],
    }
    assert listed[lifted["order_id"]]["op"] == "reinstate"
    assert listed[lifted["order_id"]]["status"] == "applied"


def test_reinstate_lifts_exactly_the_named_order(
    app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, _ = _agent(app_world)
    voluntary = clients["acme"].order("suspend", agent_id, "operator halts for maintenance")
    imposed = clients["home"].order("suspend", agent_id, "regulator halts")
    clients["acme"].order("reinstate", agent_id, "maintenance done", lifts=voluntary["order_id"])
    assert _state(app_world, agent_id) == ("suspended", ["*"])  # the regulator's order stands
    _refused(
        app_world,
        lambda: clients["acme"].order("reinstate", agent_id, "mine now", lifts=imposed["order_id"]),
        403,
        "forbidden",
    )
    clients["home"].order("reinstate", agent_id, "cleared", lifts=imposed["order_id"])
    assert _state(app_world, agent_id) == ("active", [])


def test_a_lifted_order_cannot_be_lifted_again(
    app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, _ = _agent(app_world)
    home = clients["home"]
    suspended = home.order("suspend", agent_id, "halt")
    home.order("reinstate", agent_id, "cleared", lifts=suspended["order_id"])
    _refused(
        app_world,
        lambda: home.order("reinstate", agent_id, "again", lifts=suspended["order_id"]),
        404,
        "unknown_order",
    )
    _refused(
        app_world,
        lambda: home.order("reinstate", agent_id, "no such order", lifts="never-issued"),
        404,
        "unknown_order",
    )


def test_a_host_regulator_suspends_in_its_own_territory_and_lifts_only_its_own_order(
    app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, _ = _agent(app_world)
    host, home = clients["host"], clients["home"]
    local = host.order("suspend", agent_id, "breach of FR rules", territory=HOST)
    assert local["status"] == "active"  # still active elsewhere
    assert _state(app_world, agent_id) == ("active", [HOST])
    by_home = home.order("suspend", agent_id, "DE halt on ZZ's own motion", territory=OTHER)
    assert _state(app_world, agent_id) == ("active", [OTHER, HOST])
    _refused(
        app_world,
        lambda: host.order("reinstate", agent_id, "lift DE", lifts=by_home["order_id"]),
        403,
        "forbidden",
    )
    host.order("reinstate", agent_id, "remedied", territory=HOST, lifts=local["order_id"])
    assert _state(app_world, agent_id) == ("active", [OTHER])


def test_revocation_and_status_transitions(
    app_client: TestClient, app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, key = _agent(app_world)
    home = clients["home"]
    seen = [app_world.node.registry.status(agent_id)]
    suspension = home.order("suspend", agent_id, "halt")
    seen.append(app_world.node.registry.status(agent_id))
    revocation = home.order("revoke", agent_id, "licence withdrawn")
    seen.append(revocation["status"])
    home.order("reinstate", agent_id, "suspension no longer needed", lifts=suspension["order_id"])
    seen.append(app_world.node.registry.status(agent_id))  # the revocation still stands
    home.order("reinstate", agent_id, "licence restored on appeal", lifts=revocation["order_id"])
    seen.append(app_world.node.registry.status(agent_id))
    assert seen == ["active", "suspended", "revoked", "revoked", "active"]
    assert _append(app_client, key, agent_id, 1).status_code == 200


def test_a_revoked_agents_decisions_are_refused(
    app_client: TestClient, app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, key = _agent(app_world)
    assert _append(app_client, key, agent_id, 1).status_code == 200
    clients["home"].order("revoke", agent_id, "licence withdrawn")
    before = registry_state(app_world.node)
    refused = _append(app_client, key, agent_id, 2)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "agent_revoked"
    assert registry_state(app_world.node) == before


def test_a_revoked_agent_may_still_record_its_halt(
    app_client: TestClient, app_world: World, clients: dict[str, Client]
) -> None:
    """Documented choice: the halt is the evidence forensics needs, nothing to act on."""
    agent_id, key = _agent(app_world)
    clients["home"].order("revoke", agent_id, "licence withdrawn")
    size = app_world.node.store.sequenced_size()
    halt = sign_decision(key, agent_id, "halt", "revoked: stopped and flattened positions")
    body = canonical_dumps(halt.to_json())
    accepted = app_client.post(
        "/api/v1/entries", content=body, headers={"Content-Type": "application/json"}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"indices": [size]}


def test_a_suspended_agents_decisions_are_still_recorded(
    app_client: TestClient, app_world: World, clients: dict[str, Client]
) -> None:
    """Documented choice: a suspended agent's guard records its halt as a decision."""
    agent_id, key = _agent(app_world)
    clients["home"].order("suspend", agent_id, "halt")
    clients["host"].order("suspend", agent_id, "halt here", territory=HOST)
    size = app_world.node.store.sequenced_size()
    accepted = _append(app_client, key, agent_id, 1)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"indices": [size]}


def _halt(client: TestClient, key: EnvelopeSigner, agent_id: str, why: str) -> Any:
    body = canonical_dumps(sign_decision(key, agent_id, "halt", why).to_json())
    return client.post(
        "/api/v1/entries", content=body, headers={"Content-Type": "application/json"}
    )


def test_a_revoked_agent_records_one_halt_per_revocation(
    app_client: TestClient, app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, key = _agent(app_world)
    home = clients["home"]
    revocation = home.order("revoke", agent_id, "licence withdrawn")
    assert _halt(app_client, key, agent_id, "stopped").status_code == 200
    before = registry_state(app_world.node)
    again = _halt(app_client, key, agent_id, "stopped, again")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "halt_already_recorded"
    assert "one halt per revocation" in again.json()["error"]["message"]
    assert registry_state(app_world.node) == before
    home.order("reinstate", agent_id, "restored on appeal", lifts=revocation["order_id"])
    home.order("revoke", agent_id, "withdrawn again")
    assert (
        _halt(app_client, key, agent_id, "stopped after the second revocation").status_code == 200
    )
    assert _halt(app_client, key, agent_id, "and once more").status_code == 409


def test_orders_refused_for_what_does_not_exist_or_already_does(
    app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, _ = _agent(app_world)
    home = clients["home"]
    home.order("suspend", agent_id, "halt", order_id="dup-order-1")
    _refused(
        app_world,
        lambda: home.order("suspend", agent_id, "again", order_id="dup-order-1"),
        409,
        "order_exists",
    )
    _refused(
        app_world,
        lambda: home.order("suspend", "urn:custodes:zz:agent:nobody", "halt"),
        404,
        "unknown_agent",
    )


def test_kill_orders_are_listed_by_agent_and_by_activity(
    app_client: TestClient, app_world: World, clients: dict[str, Client]
) -> None:
    agent_id, _ = _agent(app_world)
    home, host = clients["home"], clients["host"]
    first = home.order("suspend", agent_id, "halt")
    second = host.order("suspend", agent_id, "halt here", territory=HOST)
    third = home.order("reinstate", agent_id, "cleared", lifts=first["order_id"])
    mine = _orders(app_client, agent_id=agent_id)
    assert [(o["order_id"], o["status"], o["issued_index"]) for o in mine] == [
        (first["order_id"], "lifted", first["index"]),
        (second["order_id"], "active", second["index"]),
        (third["order_id"], "applied", third["index"]),
    ]
    active = _orders(app_client, agent_id=agent_id, active="true")
    assert [o["order_id"] for o in active] == [second["order_id"]]
    everyone = _orders(app_client)
    assert {o["order_id"] for o in mine} <= {o["order_id"] for o in everyone}
    assert [o["issued_index"] for o in everyone] == sorted(o["issued_index"] for o in everyone)


def test_a_selector_order_over_the_api(app_client: TestClient, app_world: World) -> None:
    sector = fresh_slug("api")
    agents = [register_agent(app_world, EnvelopeSigner.generate(), sector=sector) for _ in "abc"]
    home = client_for(app_client, app_world.home)
    answer = home.order("suspend", None, "model found vulnerable", selector=Selector(sector=sector))
    assert (answer["agent_id"], answer["agents"], answer["status"]) == (None, 3, "suspended")
    assert answer["selector"] == {"sector": sector}
    listed = app_client.get(f"/api/v1/kill-orders/{answer['order_id']}/agents").json()
    assert listed == {"order_id": answer["order_id"], "agents": sorted(agents)}
    for_agent = app_client.get("/api/v1/kill-orders", params={"agent_id": agents[0]}).json()
    assert [(o["order_id"], o["selector"], o["agents"]) for o in for_agent] == [
        (answer["order_id"], {"sector": sector}, 3)
    ]
    missing = app_client.get("/api/v1/kill-orders/no-such-order/agents")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_order"


def _committed_halt(client: TestClient, key: EnvelopeSigner, agent_id: str, action: str) -> Any:
    body = canonical_dumps(sign_committed_decision(key, agent_id, action, "stopped").to_json())
    return client.post(
        "/api/v1/entries", content=body, headers={"Content-Type": "application/json"}
    )


def test_a_revoked_agents_committed_halt_counts_as_its_one_halt(
    app_client: TestClient, app_world: World, clients: dict[str, Client]
) -> None:
    """The SDK writes halts as commitments: the log's public kind says it is a halt."""
    agent_id, key = _agent(app_world)
    clients["home"].order("revoke", agent_id, "licence withdrawn")
    refused = _committed_halt(app_client, key, agent_id, "buy")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "agent_revoked"
    assert _committed_halt(app_client, key, agent_id, "halt").status_code == 200
    again = _halt(app_client, key, agent_id, "stopped, again in plain")
    assert again.json()["error"]["code"] == "halt_already_recorded"
