"""The agent's lease state (GET /api/v1/agents/{id}/lease; the agent page shows it).

The node keeps the newest lease it granted each agent, written with the request's nonce,
so a regulator can see until when an agent may still act after an order halted it.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient

from custodes.killswitch import LeaseIssuer
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope
from tests.registry.support import HOME, HOST, World, order, register_agent
from tests.registry.test_leases import ask, lease_of, refused, request_body


def _state(client: TestClient, agent_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/agents/{agent_id}/lease")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def _agent(world: World, **fields: Any) -> tuple[str, EnvelopeSigner]:
    key = EnvelopeSigner.generate()
    return register_agent(world, key, **fields), key


def test_an_agent_never_leased_has_no_lease(app_client: TestClient, app_world: World) -> None:
    agent_id, _ = _agent(app_world)
    state = _state(app_client, agent_id)
    assert state["agent_id"] == agent_id
    assert (state["status"], state["suspended_in"]) == ("active", [])
    assert state["last_lease"] is None
    assert state["acting_until"] is None


def test_the_newest_granted_lease_is_the_state(app_client: TestClient, app_world: World) -> None:
    agent_id, key = _agent(app_world, operating_jurisdictions=(HOST,))
    lease_of(app_client, request_body(key, agent_id))
    newest = lease_of(app_client, request_body(key, agent_id))
    state = _state(app_client, agent_id)
    assert state["last_lease"] == {
        "lease_id": newest["lease_id"],
        "keyid": key.keyid,
        "jurisdictions": newest["jurisdictions"],
        "nbf": newest["nbf"],
        "exp": newest["exp"],
        "valid": True,
    }
    assert state["acting_until"] == newest["exp"]


def test_after_a_suspension_the_last_lease_still_bounds_the_agent(
    app_client: TestClient, app_world: World
) -> None:
    agent_id, key = _agent(app_world)
    lease = lease_of(app_client, request_body(key, agent_id))
    order(app_world.node, app_world.home, "suspend", agent_id)
    refused(app_client, request_body(key, agent_id), 403, "agent_halted")
    state = _state(app_client, agent_id)
    assert state["status"] == "suspended"
    assert state["last_lease"]["lease_id"] == lease["lease_id"]  # the refusal recorded none
    assert state["acting_until"] == lease["exp"]


def test_a_territorial_suspension_shows_in_the_next_lease(
    app_client: TestClient, app_world: World
) -> None:
    agent_id, key = _agent(app_world, operating_jurisdictions=(HOST,))
    order(app_world.node, app_world.host, "suspend", agent_id, territory=HOST)
    lease = lease_of(app_client, request_body(key, agent_id))
    state = _state(app_client, agent_id)
    assert state["suspended_in"] == [HOST]
    assert state["last_lease"]["jurisdictions"] == lease["jurisdictions"] == [HOME]


def test_a_replayed_request_records_nothing(app_client: TestClient, app_world: World) -> None:
    agent_id, key = _agent(app_world)
    body = request_body(key, agent_id)
    lease = lease_of(app_client, body)
    response = ask(app_client, body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "replayed_request"
    assert _state(app_client, agent_id)["last_lease"]["lease_id"] == lease["lease_id"]


def test_an_unknown_agent_is_a_404(app_client: TestClient) -> None:
    response = app_client.get("/api/v1/agents/urn:custodes:gb:agent:nobody/lease")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_agent"


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_an_older_lease_never_replaces_a_newer_one_and_expiry_ends_it(app_world: World) -> None:
    node = app_world.node
    clock = Clock(1_000_000.0)
    issuer = LeaseIssuer(node.engine, node.signers, node.entry_signer, "x", clock=clock)
    agent_id, key = _agent(app_world)

    def grant(at: int) -> dict[str, Any]:
        clock.at = float(at)
        answer = issuer.issue(orjson.loads(request_body(key, agent_id, at=at)))
        lease: dict[str, Any] = orjson.loads(parse_envelope(answer).payload)
        return lease

    newer = grant(1_000_000)
    older = grant(999_990)  # answered later, but granted from an earlier moment
    assert older["nbf"] < newer["nbf"]
    clock.at = 1_000_001.0
    state = issuer.state(agent_id)
    assert state["last_lease"]["lease_id"] == newer["lease_id"]
    assert state["acting_until"] == newer["exp"]
    clock.at = float(newer["exp"])
    state = issuer.state(agent_id)
    assert state["last_lease"]["valid"] is False
    assert state["acting_until"] is None
