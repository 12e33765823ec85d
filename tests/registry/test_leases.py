"""POST /api/v1/leases on SQLite and PostgreSQL: who gets a lease, for how long, where.

A lease is checked the way an agent's guard would: the envelope verifies under the
node's entry key and carries the expected payload. Leases are never logged, and a
refused request leaves the log and the registry as they were.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.config import Settings
from custodes.errors import AuthError, ConfigError
from custodes.killswitch import LEASE_REQUEST_TYPE, LEASE_TYPE, LeaseIssuer
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope, sign_envelope, verify_envelope
from custodes.ledger.payloads import DECISION_TYPE
from custodes.node import Node
from custodes.registry.models import AgentRotateKey
from tests.registry.support import (
    HOME,
    HOST,
    OTHER,
    World,
    b64,
    build_world,
    now,
    order,
    register_agent,
    registry_state,
    submit,
)

LEASE_FIELDS = {
    "v",
    "lease_id",
    "nonce",
    "agent_id",
    "keyid",
    "jurisdictions",
    "nbf",
    "exp",
    "issuer",
}


def request_body(
    key: EnvelopeSigner,
    agent_id: str,
    *,
    at: int | None = None,
    nonce: str | None = None,
    payload_type: str = LEASE_REQUEST_TYPE,
    **extra: Any,
) -> bytes:
    payload = {
        "v": 1,
        "agent_id": agent_id,
        "nonce": nonce or secrets.token_hex(16),
        "at": int(time.time()) if at is None else at,
    } | extra
    envelope = sign_envelope(payload_type, orjson.dumps(payload), [key])
    return canonical_dumps(envelope.to_json())


def ask(client: TestClient, body: bytes) -> Any:
    return client.post("/api/v1/leases", content=body, headers={"Content-Type": "application/json"})


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def lease_of(client: TestClient, body: bytes) -> dict[str, Any]:
    """Ask for a lease; check it is granted, signed by the node, and not logged."""
    node = node_of(client)
    before = registry_state(node)
    response = ask(client, body)
    assert response.status_code == 201, response.text
    envelope = parse_envelope(response.json())
    assert envelope.payload_type == LEASE_TYPE
    node_key = {node.entry_signer.keyid: node.entry_signer.public_key}
    assert verify_envelope(envelope, node_key.get) == [node.entry_signer.keyid]
    assert registry_state(node) == before
    lease: dict[str, Any] = orjson.loads(envelope.payload)
    assert set(lease) == LEASE_FIELDS
    asked = orjson.loads(base64.b64decode(orjson.loads(body)["payload"]))
    assert lease["nonce"] == asked["nonce"]  # the lease answers exactly this request
    return lease


def refused(client: TestClient, body: bytes, status: int, code: str) -> dict[str, Any]:
    node = node_of(client)
    before = registry_state(node)
    response = ask(client, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert registry_state(node) == before
    return dict(error["detail"])


def _agent(world: World, **fields: Any) -> tuple[str, EnvelopeSigner]:
    key = EnvelopeSigner.generate()
    return register_agent(world, key, **fields), key


def test_an_active_agent_gets_a_lease_signed_by_its_home_node(
    app_client: TestClient, app_world: World
) -> None:
    agent_id, key = _agent(app_world, operating_jurisdictions=(HOST, OTHER))
    asked_at = int(time.time())
    lease = lease_of(app_client, request_body(key, agent_id))
    assert lease["v"] == 1
    assert (lease["agent_id"], lease["keyid"]) == (agent_id, key.keyid)
    assert lease["jurisdictions"] == sorted([HOME, HOST, OTHER])
    assert lease["issuer"] == app_world.node.settings.origin
    assert asked_at - 1 <= lease["nbf"] <= int(time.time()) + 1
    assert len(bytes.fromhex(lease["lease_id"])) == 8
    other = lease_of(app_client, request_body(key, agent_id))
    assert other["lease_id"] != lease["lease_id"]


@pytest.mark.parametrize(
    ("fields", "lifetime"),
    [
        pytest.param({"sector": "finance"}, 60, id="finance-is-critical"),
        pytest.param({"sector": "energy", "risk_tier": "minimal"}, 60, id="energy-is-critical"),
        pytest.param({"sector": "logistics", "risk_tier": "critical"}, 60, id="critical-tier"),
        pytest.param({"sector": "logistics", "risk_tier": "high"}, 300, id="not-critical"),
    ],
)
def test_lease_lifetime_follows_the_agents_risk(
    app_client: TestClient, app_world: World, fields: dict[str, Any], lifetime: int
) -> None:
    agent_id, key = _agent(app_world, **fields)
    lease = lease_of(app_client, request_body(key, agent_id))
    assert lease["exp"] - lease["nbf"] == lifetime


@pytest.fixture
def configured_client(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """A node whose lease lifetimes come from CUSTODES_* environment variables."""
    monkeypatch.setenv("CUSTODES_LEASE_TTL_CRITICAL", "20")
    monkeypatch.setenv("CUSTODES_LEASE_TTL_DEFAULT", "120")
    monkeypatch.setenv("CUSTODES_DEPLOYMENT_GATE", "false")  # its finance agent is unaudited
    settings = Settings(
        data_dir=tmp_path / "node", database_url=db_url, origin="test.custodes.example/log"
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_configured_lease_lifetimes_are_honoured(configured_client: TestClient) -> None:
    world = build_world(node_of(configured_client))
    critical, critical_key = _agent(world, sector="finance")
    ordinary, ordinary_key = _agent(world, sector="logistics")
    lease = lease_of(configured_client, request_body(critical_key, critical))
    assert lease["exp"] - lease["nbf"] == 20
    lease = lease_of(configured_client, request_body(ordinary_key, ordinary))
    assert lease["exp"] - lease["nbf"] == 120


def test_a_critical_lease_never_lasts_more_than_60_seconds(app_world: World) -> None:
    with pytest.raises(ConfigError, match="lease_ttl_critical"):  # one line, not a traceback
        Settings(lease_ttl_critical=61)
    node = app_world.node
    issuer = LeaseIssuer(node.engine, node.signers, node.entry_signer, "x", ttl_critical=3600)
    agent_id, key = _agent(app_world, sector="energy")
    envelope = parse_envelope(issuer.issue(orjson.loads(request_body(key, agent_id))))
    lease = orjson.loads(envelope.payload)
    assert lease["exp"] - lease["nbf"] == 60


# --- refusals ----------------------------------------------------------------------------


def test_no_lease_for_an_unknown_agent(app_client: TestClient, app_world: World) -> None:
    stranger = EnvelopeSigner.generate()
    nobody = "urn:custodes:zz:agent:nobody"
    detail = refused(app_client, request_body(stranger, nobody), 403, "unknown_signer")
    assert detail == {"keyids": [stranger.keyid]}
    _, key = _agent(app_world)
    refused(app_client, request_body(key, nobody), 403, "signer_mismatch")


def test_no_lease_with_another_agents_key(app_client: TestClient, app_world: World) -> None:
    victim, _ = _agent(app_world)
    _, other_key = _agent(app_world)
    refused(app_client, request_body(other_key, victim), 403, "signer_mismatch")


def _rotate(world: World, agent_id: str, old: EnvelopeSigner) -> EnvelopeSigner:
    new = EnvelopeSigner.generate()
    change = AgentRotateKey(
        actor=world.acme.id, at=now(), agent_id=agent_id, add=(b64(new),), retire=(old.keyid,)
    )
    submit(world.node, world.acme, change)
    return new


def test_no_lease_with_a_retired_key(app_client: TestClient, app_world: World) -> None:
    agent_id, old = _agent(app_world)
    new = _rotate(app_world, agent_id, old)
    refused(app_client, request_body(old, agent_id), 403, "unknown_signer")
    assert lease_of(app_client, request_body(new, agent_id))["keyid"] == new.keyid


def test_no_lease_with_a_key_retired_while_in_use(app_client: TestClient, app_world: World) -> None:
    agent_id, old = _agent(app_world)
    lease_of(app_client, request_body(old, agent_id))
    _rotate(app_world, agent_id, old)
    refused(app_client, request_body(old, agent_id), 403, "unknown_signer")


@pytest.mark.parametrize(
    ("skew", "granted"),
    [
        pytest.param(-40, False, id="40s-old"),
        pytest.param(-31, False, id="31s-old"),
        pytest.param(-25, True, id="25s-old"),
        pytest.param(25, True, id="25s-ahead"),
        pytest.param(31, False, id="31s-ahead"),
    ],
)
def test_requests_must_be_fresh(
    app_client: TestClient, app_world: World, skew: int, granted: bool
) -> None:
    agent_id, key = _agent(app_world)
    body = request_body(key, agent_id, at=int(time.time()) + skew)
    if granted:
        lease_of(app_client, body)
    else:
        refused(app_client, body, 403, "stale_request")


def test_a_replayed_request_gets_no_second_lease(app_client: TestClient, app_world: World) -> None:
    agent_id, key = _agent(app_world)
    body = request_body(key, agent_id)
    lease_of(app_client, body)
    refused(app_client, body, 403, "replayed_request")
    nonce = orjson.loads(parse_envelope(orjson.loads(body)).payload)["nonce"]
    refused(app_client, request_body(key, agent_id, nonce=nonce), 403, "replayed_request")


def test_concurrent_copies_of_a_request_get_one_lease_across_workers(app_world: World) -> None:
    """Claims are group-committed: copies in one group, and copies at two workers
    sharing the database (two issuers), still yield exactly one lease."""
    node = app_world.node
    agent_id, key = _agent(app_world)
    workers = [
        LeaseIssuer(node.engine, node.signers, node.entry_signer, node.settings.origin)
        for _ in range(2)
    ]
    body = orjson.loads(request_body(key, agent_id))

    def ask_worker(n: int) -> str:
        try:
            workers[n % 2].issue(body)
        except AuthError as exc:
            return exc.code
        return "lease"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask_worker, range(24)))

    assert sorted(set(answers)) == ["lease", "replayed_request"]
    assert answers.count("lease") == 1


def test_malformed_requests_are_refused(app_client: TestClient, app_world: World) -> None:
    agent_id, key = _agent(app_world)
    refused(
        app_client,
        request_body(key, agent_id, payload_type=DECISION_TYPE),
        422,
        "unsupported_payload_type",
    )
    refused(app_client, request_body(key, agent_id, nonce="not-hex"), 422, "invalid_payload")
    refused(app_client, request_body(key, agent_id, extra="x"), 422, "invalid_payload")
    refused(app_client, canonical_dumps({"payload": "x"}), 422, "invalid_envelope")
    refused(app_client, b'{"payload":', 400, "malformed_json")
    refused(app_client, b'{ "payloadType": 1 }', 422, "non_canonical_json")


# --- orders and leases ---------------------------------------------------------------


def test_a_suspended_or_revoked_agent_gets_no_lease(
    app_client: TestClient, app_world: World
) -> None:
    agent_id, key = _agent(app_world)
    _, suspension = order(app_world.node, app_world.home, "suspend", agent_id)
    detail = refused(app_client, request_body(key, agent_id), 403, "agent_halted")
    assert detail == {"status": "suspended"}
    order(app_world.node, app_world.home, "revoke", agent_id)
    order(app_world.node, app_world.home, "reinstate", agent_id, lifts=suspension.order_id)
    detail = refused(app_client, request_body(key, agent_id), 403, "agent_halted")
    assert detail == {"status": "revoked"}


def test_a_territorial_suspension_removes_that_territory_until_reinstated(
    app_client: TestClient, app_world: World
) -> None:
    agent_id, key = _agent(app_world, operating_jurisdictions=(HOST, OTHER))
    _, local = order(app_world.node, app_world.host, "suspend", agent_id, territory=HOST)
    lease = lease_of(app_client, request_body(key, agent_id))
    assert lease["jurisdictions"] == sorted([HOME, OTHER])
    order(
        app_world.node, app_world.host, "reinstate", agent_id, territory=HOST, lifts=local.order_id
    )
    lease = lease_of(app_client, request_body(key, agent_id))
    assert lease["jurisdictions"] == sorted([HOME, HOST, OTHER])


def test_suspended_everywhere_it_operates_means_no_lease(
    app_client: TestClient, app_world: World
) -> None:
    agent_id, key = _agent(app_world, operating_jurisdictions=(HOST,))
    order(app_world.node, app_world.home, "suspend", agent_id, territory=HOME)
    order(app_world.node, app_world.host, "suspend", agent_id, territory=HOST)
    refused(app_client, request_body(key, agent_id), 403, "agent_halted")


def test_a_reinstated_agent_gets_leases_again(app_client: TestClient, app_world: World) -> None:
    agent_id, key = _agent(app_world)
    _, suspension = order(app_world.node, app_world.acme, "suspend", agent_id)
    refused(app_client, request_body(key, agent_id), 403, "agent_halted")
    order(app_world.node, app_world.acme, "reinstate", agent_id, lifts=suspension.order_id)
    assert lease_of(app_client, request_body(key, agent_id))["jurisdictions"] == [HOME]
