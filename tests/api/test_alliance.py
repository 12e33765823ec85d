"""GET /api/v1/alliance/agents/{id}: own agents with proof, and the look-ups it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.config import Settings
from custodes.federation.lookup import LookupUnverified, verify_lookup
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import SignedRoster, found_roster
from custodes.ledger.dsse import EnvelopeSigner
from tests.api.support import ADMIN, AGENT, node_of
from tests.enrol import enrol


def _roster(settings: Settings, tmp_path: Path) -> SignedRoster:
    """This node (ZZ) and a peer (YY) whose node never answers."""
    me = node_party(
        settings.data_dir,
        code="ZZ",
        name="Zedland",
        status="member",
        urls=["http://127.0.0.1:1"],
        origin=settings.origin,
    )
    peer_dir = tmp_path / "yy"
    peer = node_party(
        peer_dir,
        code="YY",
        name="Whyland",
        status="member",
        urls=["http://127.0.0.1:9"],
        origin="yy.example/log",
    )
    votes = [roster_signer(settings.data_dir), roster_signer(peer_dir)]
    return found_roster(
        "test alliance", [me, peer], votes, expires=datetime.now(UTC) + timedelta(days=1)
    )


@pytest.fixture
def alliance(settings: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, SignedRoster]]:
    roster = _roster(settings, tmp_path)
    path = tmp_path / "roster.json"
    path.write_bytes(orjson.dumps(roster.document))
    with TestClient(create_app(settings.model_copy(update={"roster_file": path}))) as client:
        # The roster's genesis and regulators come first in the log: no fixed head size.
        assert enrol(node_of(client), EnvelopeSigner.from_seed(bytes(range(32)))) == AGENT
        node_of(client).log.integrate()
        yield client, roster


def _look_up(client: TestClient, agent_id: str) -> Any:
    return client.get(f"/api/v1/alliance/agents/{agent_id}")


def test_an_own_agent_answers_from_the_registry_with_a_proof_that_verifies(
    alliance: tuple[TestClient, SignedRoster],
) -> None:
    client, roster = alliance
    response = _look_up(client, AGENT)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["source"], answer["status"], answer["stale"]) == ("self", "active", False)
    checked = verify_lookup(answer, roster)
    assert checked.entry_index == answer["entry_index"]
    assert checked.checkpoint.size == answer["proof"]["tree_size"]
    assert not checked.finality.final  # nobody cosigned this node's log


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"entry_index": 0}, id="another-index"),
        pytest.param({"leaf_hash": "A" * 43 + "="}, id="another-leaf"),
        pytest.param({"entry": "e30="}, id="another-entry"),
    ],
)
def test_an_answer_changed_on_the_way_does_not_verify(
    alliance: tuple[TestClient, SignedRoster], tamper: dict[str, Any]
) -> None:
    client, roster = alliance
    answer = _look_up(client, AGENT).json()
    with pytest.raises(LookupUnverified):
        verify_lookup({**answer, **tamper}, roster)


def test_a_checkpoint_signed_by_another_key_does_not_verify(
    alliance: tuple[TestClient, SignedRoster], tmp_path: Path, settings: Settings
) -> None:
    client, _ = alliance
    answer = _look_up(client, AGENT).json()
    other = _roster(settings.model_copy(update={"data_dir": tmp_path / "other"}), tmp_path)
    with pytest.raises(LookupUnverified):
        verify_lookup(answer, other)


@pytest.mark.parametrize(
    ("agent_id", "status", "code"),
    [
        pytest.param("urn:custodes:us:agent:bot", 404, "unknown_jurisdiction", id="outside"),
        pytest.param("not-an-agent-id", 422, "bad_agent_id", id="malformed"),
        pytest.param("urn:custodes:ZZ:agent:bot", 422, "bad_agent_id", id="upper-case"),
        pytest.param("urn:custodes:zz:agent:nobody", 404, "unknown_agent", id="unknown-here"),
        pytest.param("urn:custodes:yy:agent:bot", 503, "home_unreachable", id="home-down"),
    ],
)
def test_refused_look_ups_answer_the_error_shape_and_write_nothing(
    alliance: tuple[TestClient, SignedRoster], agent_id: str, status: int, code: str
) -> None:
    client, _ = alliance
    size = node_of(client).store.sequenced_size()
    response = _look_up(client, agent_id)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert node_of(client).store.sequenced_size() == size


def test_the_mirrors_list_names_each_peer(alliance: tuple[TestClient, SignedRoster]) -> None:
    client, _ = alliance
    states = client.get("/api/v1/alliance/mirrors").json()
    assert [(s["party"], s["size"], s["stale"]) for s in states] == [("YY", 0, True)]


def test_a_regulator_with_a_token_sees_what_the_registry_lets_it_read(
    alliance: tuple[TestClient, SignedRoster],
) -> None:
    client, _ = alliance
    issued = client.post("/api/v1/admin/tokens", json={"principal": "regulator:zz"}, headers=ADMIN)
    assert issued.status_code in (200, 201), issued.text
    token = {"Authorization": f"Bearer {issued.json()['token']}"}
    public = _look_up(client, AGENT).json()
    private = client.get(f"/api/v1/alliance/agents/{AGENT}", headers=token).json()
    assert public["keys"] == []  # an agent's keys are for regulators, not the public
    assert [k["status"] for k in private["keys"]] == ["active"]
    assert set(private["record"]) > set(public["record"])
