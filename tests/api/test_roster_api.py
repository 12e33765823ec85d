"""The roster over HTTP: read it, apply the next version, refuse what does not verify."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.config import Settings
from custodes.errors import ConfigError
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.node import Node
from custodes.registry.models import KillOrder
from custodes.registry.rebuild import rebuild
from custodes.registry.service import ORDER_TYPE
from custodes.store.db import open_engine
from tests.api.support import ADMIN, assert_error, node_of
from tests.enrol import REGULATOR_KEY, enrol
from tests.federation.world import RosterWorld, found_world, set_status
from tests.integration.procs import wait_until

ROSTER = "/api/v1/federation/roster"


@pytest.fixture
def world(tmp_path: Path) -> RosterWorld:
    # GB's regulator holds the key tests.enrol signs with, so enrol() works at GB's node.
    return found_world(tmp_path / "alliance", regulator_keys={"GB": REGULATOR_KEY})


def _gb_settings(settings: Settings, world: RosterWorld) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": world.data_dir("GB"),
            "origin": world.parties["GB"].origin,
            "jurisdiction": "GB",
            "roster_file": world.write(world.genesis.document, "roster-1.json"),
            "roster_poll_interval": 0.0,
        }
    )


@pytest.fixture
def gb(settings: Settings, world: RosterWorld) -> Iterator[TestClient]:
    with TestClient(create_app(_gb_settings(settings, world))) as client:
        yield client


def _written(client: TestClient) -> tuple[int, int]:
    node = node_of(client)
    return node.store.sequenced_size(), len(node.roster_log.chain())


def test_the_genesis_is_logged_and_served(gb: TestClient, world: RosterWorld) -> None:
    body = gb.get(ROSTER).json()
    assert body["version"] == 1
    assert body["digest"] == world.genesis.digest()
    assert body["document"] == world.genesis.document
    entry = gb.get(f"/api/v1/entries/{body['index']}")
    assert entry.status_code == 200, entry.text
    assert entry.json()["entry"]["payloadType"] == "application/vnd.custodes.roster+json"
    chain = gb.get(f"{ROSTER}/chain").json()["versions"]
    assert [v["version"] for v in chain] == [1]


def test_the_next_version_applies_once(gb: TestClient, world: RosterWorld) -> None:
    v2 = world.next(world.genesis, change=set_status("CA", "suspended"))
    applied = gb.post(ROSTER, json=v2)
    assert applied.status_code == 201, applied.text
    assert applied.json()["status"] == "applied"
    assert gb.get(ROSTER).json()["version"] == 2
    assert gb.get(ROSTER, params={"version": 1}).json()["digest"] == world.genesis.digest()
    before = _written(gb)
    again = gb.post(ROSTER, json=v2)
    assert again.status_code == 200
    assert again.json()["status"] == "already_applied"
    assert _written(gb) == before
    node = node_of(gb)
    assert rebuild(node.store).equal  # the roster entries replay exactly
    wait_until(
        "the roster entries integrated",
        lambda: node.store.tree_size()[0] == node.store.sequenced_size(),
        timeout=30,
    )
    assert node.audit().audited == node.store.sequenced_size()  # and pass the audit
    assert_error(gb.get(ROSTER, params={"version": 7}), 404, "unknown_version")


def _refused(client: TestClient, body: Any, status: int, code: str) -> dict[str, Any]:
    before = _written(client)
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    detail = assert_error(client.post(ROSTER, content=content), status, code)
    assert _written(client) == before
    return detail


def test_too_few_signatures_are_refused(gb: TestClient, world: RosterWorld) -> None:
    v2 = world.next(world.genesis, signers=["GB", "FR"])
    assert _refused(gb, v2, 422, "roster_quorum") == {"valid": 2, "needed": 3}


def test_a_skipped_version_is_refused(gb: TestClient, world: RosterWorld) -> None:
    _refused(gb, world.next(world.genesis, version=3), 422, "roster_version")


def test_a_fork_of_a_held_version_is_refused(gb: TestClient, world: RosterWorld) -> None:
    assert gb.post(ROSTER, json=world.next(world.genesis)).status_code == 201
    fork = world.next(world.genesis, change=set_status("DE", "suspended"))
    _refused(gb, fork, 409, "roster_fork")
    other_genesis = found_world(world.root / "other").genesis.document
    _refused(gb, other_genesis, 409, "roster_fork")


def test_an_expired_roster_is_refused(gb: TestClient, world: RosterWorld) -> None:
    stale = world.next(world.genesis, expires=datetime.now(UTC) - timedelta(days=1))
    _refused(gb, stale, 422, "roster_expired")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        ({"signed": {}}, 422, "roster_invalid"),
        ({"signed": {"_type": "targets"}, "signatures": []}, 422, "roster_invalid"),
    ],
)
def test_a_malformed_roster_is_refused(gb: TestClient, body: Any, status: int, code: str) -> None:
    _refused(gb, body, status, code)


def test_a_roster_with_altered_parties_is_refused(gb: TestClient, world: RosterWorld) -> None:
    v2 = world.next(world.genesis)
    v2["signed"]["x-custodes-roster"]["alliance"] = "someone else's"
    _refused(gb, v2, 422, "roster_quorum")


def test_an_oversized_body_is_refused(gb: TestClient) -> None:
    _refused(gb, b"[" + b" " * (300 * 1024) + b"]", 413, "body_too_large")


def test_regulators_come_from_the_roster(gb: TestClient, world: RosterWorld) -> None:
    node = node_of(gb)
    fr = node.tokens.principal("regulator:fr")
    assert (fr.role, fr.jurisdiction) == ("regulator", "FR")
    record = {
        "id": "regulator:fr-other",
        "role": "regulator",
        "jurisdiction": "FR",
        "name": "a second French regulator",
        "public_key": base64.b64encode(bytes(range(32))).decode(),
    }
    before = _written(gb)
    refused = gb.post("/api/v1/admin/principals", json=record, headers=ADMIN)
    assert_error(refused, 409, "use_roster")
    assert _written(gb) == before
    token = gb.post("/api/v1/admin/tokens", json={"principal": "regulator:fr"}, headers=ADMIN)
    assert token.status_code == 201, token.text


def _signer_status(client: TestClient, name: str) -> str:
    listed = client.get("/api/v1/signers").json()
    return str(next(s["status"] for s in listed if s["name"] == name))


def test_a_suspended_partys_regulator_stops_signing(gb: TestClient, world: RosterWorld) -> None:
    assert _signer_status(gb, "regulator:fr") == "active"
    assert (
        gb.post(
            ROSTER,
            json=world.next(world.genesis, ["GB", "DE", "CA"], set_status("FR", "suspended")),
        ).status_code
        == 201
    )
    assert _signer_status(gb, "regulator:fr") == "retired"
    v3 = world.next(
        node_of(gb).federation.roster.document,
        ["GB", "DE", "CA"],  # type: ignore[union-attr]
        set_status("FR", "member"),
    )
    assert gb.post(ROSTER, json=v3).status_code == 201
    assert _signer_status(gb, "regulator:fr") == "active"
    assert rebuild(node_of(gb).store).equal


def test_a_partners_regulator_issues_no_kill_orders(gb: TestClient, world: RosterWorld) -> None:
    token = gb.post("/api/v1/admin/tokens", json={"principal": "regulator:au"}, headers=ADMIN)
    bearer = {"Authorization": f"Bearer {token.json()['token']}"}
    order = KillOrder(
        op="suspend",
        order_id="order-au-1",
        agent_id="urn:custodes:gb:agent:any-agent",
        scope="territorial",
        territory="AU",
        reason="test",
        actor="regulator:au",
        at=datetime.now(UTC),
    )
    envelope = sign_envelope(ORDER_TYPE, order.model_dump_json().encode(), [world.regulators["AU"]])
    before = _written(gb)
    refused = gb.post("/api/v1/kill-orders", json=envelope.to_json(), headers=bearer)
    assert_error(refused, 403, "partner_no_orders")
    assert _written(gb) == before


def test_the_witness_follows_the_roster(gb: TestClient, world: RosterWorld) -> None:
    node = node_of(gb)
    origins = {p.origin for p in world.parties.values()}
    assert set(node.witness.witnessed()) == origins
    v2 = world.next(world.genesis, change=set_status("CA", "suspended"))
    assert gb.post(ROSTER, json=v2).status_code == 201
    assert set(node.witness.witnessed()) == origins - {world.parties["CA"].origin}


def test_checkpoint_finality_and_policy(gb: TestClient, world: RosterWorld) -> None:
    body = wait_until(
        "GB's own witness cosigns its checkpoint",
        lambda: (b := gb.get("/api/v1/federation/checkpoint").json()).get("cosigners") and b,
        timeout=30,
    )
    assert body["cosigners"] == ["GB"]  # the peers are not running
    assert (body["quorum"], body["final"], body["final_size"]) == (3, False, None)
    assert body["members"] == ["GB", "FR", "DE", "CA"]
    policy = gb.get("/api/v1/federation/policy")
    assert policy.headers["content-type"].startswith("text/plain")
    lines = policy.text.splitlines()
    gb_party, fr_party = world.parties["GB"], world.parties["FR"]
    assert lines[0] == f"log {gb_party.log_vkey} {gb_party.url}/log"
    assert f"witness FR {fr_party.witness_vkey} {fr_party.url}/witness" in lines
    assert lines[-2:] == ["group members 3 GB FR DE CA", "quorum members"]
    assert sum(line.startswith("log ") for line in lines) == 5  # AU's log too
    assert not any(line.startswith("witness AU") for line in lines)


def test_the_chain_survives_a_restart(settings: Settings, world: RosterWorld) -> None:
    gb_settings = _gb_settings(settings, world)
    with TestClient(create_app(gb_settings)) as client:
        assert client.post(ROSTER, json=world.next(world.genesis)).status_code == 201
    node = Node(gb_settings)
    try:
        assert node.federation.roster is not None
        assert node.federation.roster.version == 2
    finally:
        node.close()
    other = world.write(found_world(world.root / "other").genesis.document, "other.json")
    engine = open_engine(gb_settings.db_url)
    try:
        with pytest.raises(ConfigError, match="genesis"):
            Node(gb_settings.model_copy(update={"roster_file": other}), engine=engine)
    finally:
        engine.dispose()


def test_without_a_roster_there_is_none_to_apply(client: TestClient, world: RosterWorld) -> None:
    assert_error(client.get(ROSTER), 404, "no_roster")
    _refused(client, world.next(world.genesis), 409, "no_roster")


def _order(world: RosterWorld, code: str, agent_id: str, n: int) -> dict[str, Any]:
    order = KillOrder(
        op="suspend",
        order_id=f"order-{code.lower()}-{n}",
        agent_id=agent_id,
        scope="territorial",
        territory=code,
        reason="suspected market manipulation",
        actor=f"regulator:{code.lower()}",
        at=datetime.now(UTC),
    )
    payload = order.model_dump_json().encode()
    return sign_envelope(ORDER_TYPE, payload, [world.regulators[code]]).to_json()


def test_a_foreign_regulator_from_the_roster_orders_in_its_territory(
    gb: TestClient, world: RosterWorld
) -> None:
    node = node_of(gb)
    agent_id = enrol(node, EnvelopeSigner.generate(), operating=("FR",))
    token = gb.post("/api/v1/admin/tokens", json={"principal": "regulator:fr"}, headers=ADMIN)
    bearer = {"Authorization": f"Bearer {token.json()['token']}"}
    issued = gb.post("/api/v1/kill-orders", json=_order(world, "FR", agent_id, 1), headers=bearer)
    assert issued.status_code == 201, issued.text
    orders = gb.get("/api/v1/kill-orders", params={"agent_id": agent_id, "active": "true"})
    assert [o["territory"] for o in orders.json()] == ["FR"]
    v2 = world.next(world.genesis, ["GB", "DE", "CA"], set_status("FR", "suspended"))
    assert gb.post(ROSTER, json=v2).status_code == 201
    before = _written(gb)
    refused = gb.post("/api/v1/kill-orders", json=_order(world, "FR", agent_id, 2), headers=bearer)
    assert_error(refused, 403, "partner_no_orders")  # a suspended party's regulator
    assert _written(gb) == before
