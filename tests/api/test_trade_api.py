"""GET /api/v1/alliance/agents/{id}/recognitions, its offline check, and decision refs."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.audits.store import agent_digests
from custodes.config import Settings
from custodes.federation.lookup import LookupUnverified
from custodes.federation.party import roster_signer
from custodes.federation.recognition_lookup import verify_recognitions
from custodes.federation.roster import PartyRegulator, SignedRoster, found_roster
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.payloads import DECISION_TYPE, EntryRef
from custodes.sdk.decisions import sign_committed_decision
from custodes.store.db import read_tx
from tests.api.support import AGENT, assert_error, node_of, post_entries, snapshot
from tests.api.test_alliance import _roster
from tests.enrol import enrol
from tests.sdk.trade_world import SECTOR, log_decision

AGENT_KEY = EnvelopeSigner.from_seed(bytes(range(32)))
ASI_KEY = EnvelopeSigner.from_seed(b"a" * 32)  # the roster's ZZ regulator (not tests.enrol's)
REF = {"origin": "fr.trade.test/log", "index": 7, "leaf_hash": "ab" * 32}


def _with_regulator(roster: SignedRoster, settings: Settings, tmp_path: Path) -> SignedRoster:
    """The same two parties, ZZ vouching for a regulator whose key the test holds."""
    regulator = PartyRegulator(
        id="regulator:zz-asi",
        name="Zedland AI Security Institute",
        public_key=base64.b64encode(ASI_KEY.public_key).decode(),
    )
    parties = [
        p.model_copy(update={"regulators": [regulator]}) if p.code == "ZZ" else p
        for p in roster.body.parties
    ]
    votes = [roster_signer(settings.data_dir), roster_signer(tmp_path / "yy")]
    return found_roster(
        "test alliance", parties, votes, expires=datetime.now(UTC) + timedelta(days=1)
    )


@pytest.fixture
def alliance(settings: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, SignedRoster]]:
    # This node ZZ (with a regulator), and YY whose node never answers.
    roster = _with_regulator(_roster(settings, tmp_path), settings, tmp_path)
    path = tmp_path / "roster.json"
    path.write_bytes(orjson.dumps(roster.document))
    with TestClient(create_app(settings.model_copy(update={"roster_file": path}))) as client:
        assert enrol(node_of(client), AGENT_KEY) == AGENT
        node_of(client).log.integrate()
        yield client, roster


def _answer(client: TestClient, agent_id: str = AGENT) -> Any:
    response = client.get(f"/api/v1/alliance/agents/{agent_id}/recognitions")
    assert response.status_code == 200, response.text
    return response.json()


def _decide(client: TestClient, op: str = "recognise", **options: Any) -> int:
    node = node_of(client)
    with read_tx(node.engine) as conn:
        digests = agent_digests(conn, AGENT)
    return log_decision(node, AGENT, op, digests, **options)


def test_an_agent_without_decisions_is_in_force_nowhere(
    alliance: tuple[TestClient, SignedRoster],
) -> None:
    client, roster = alliance
    answer = _answer(client)
    assert (answer["decisions"], answer["in_force"], answer["unavailable"]) == (
        [],
        {"ZZ": None},
        ["YY"],
    )
    verified = verify_recognitions(answer, roster)
    assert verified.in_force("ZZ", SECTOR, time.time()) is None
    assert verified.stale("YY")  # never mirrored: not known fresh


def test_a_recognition_is_proven_and_in_force_and_a_withdrawal_ends_it(
    alliance: tuple[TestClient, SignedRoster],
) -> None:
    client, roster = alliance
    index = _decide(client)
    answer = _answer(client)
    assert answer["in_force"]["ZZ"]["entry_index"] == index
    verified = verify_recognitions(answer, roster)
    found = verified.in_force("ZZ", SECTOR, time.time())
    assert found is not None
    assert (found.index, found.record.op) == (index, "recognise")
    assert answer["digests"] == {"model": verified.model_digest, "card": verified.card_digest}

    _decide(client, "withdraw", reasons=("a drift alert on its model",))
    after = verify_recognitions(_answer(client), roster)
    assert after.in_force("ZZ", SECTOR, time.time()) is None
    assert [d.record.op for d in after.of("ZZ", SECTOR)] == ["withdraw"]


def _tamper(answer: dict[str, Any], case: str) -> dict[str, Any]:
    item = dict(answer["decisions"][0])
    if case == "entry":
        envelope = orjson.loads(base64.b64decode(item["entry"]))
        envelope["payload"] = base64.b64encode(b'{"op":"recognise"}').decode()
        item["entry"] = base64.b64encode(orjson.dumps(envelope)).decode()
    elif case == "leaf":
        item["leaf_hash"] = base64.b64encode(b"\1" * 32).decode()
    elif case == "index":
        item["entry_index"] += 1
    elif case == "party":
        item["party"] = "YY"
    elif case == "checkpoint":
        return {**answer, "parties": {"ZZ": {**answer["parties"]["ZZ"], "checkpoint": "x"}}}
    return {**answer, "decisions": [item]}


@pytest.mark.parametrize("case", ["entry", "leaf", "index", "party", "checkpoint"])
def test_an_answer_changed_on_the_way_does_not_verify(
    alliance: tuple[TestClient, SignedRoster], case: str
) -> None:
    client, roster = alliance
    _decide(client)
    answer = _answer(client)
    verify_recognitions(answer, roster)
    with pytest.raises(LookupUnverified):
        verify_recognitions(_tamper(answer, case), roster)


def test_a_decision_signed_by_the_partys_regulator_in_the_roster_verifies(
    alliance: tuple[TestClient, SignedRoster],
) -> None:
    client, roster = alliance
    index = _decide(client, signer=ASI_KEY)
    verified = verify_recognitions(_answer(client), roster)
    found = verified.in_force("ZZ", SECTOR, time.time())
    assert found is not None
    assert (found.index, found.record.automatic) == (index, False)


def test_a_decision_signed_by_a_key_outside_the_roster_does_not_verify(
    alliance: tuple[TestClient, SignedRoster],
) -> None:
    client, roster = alliance
    node = node_of(client)
    node.entry_signer, real = EnvelopeSigner.generate(), node.entry_signer
    try:
        _decide(client)  # logged as the node would, but under a key the roster does not name
    finally:
        node.entry_signer = real
    with pytest.raises(LookupUnverified, match="not a recognition signed by ZZ"):
        verify_recognitions(_answer(client), roster)


@pytest.mark.parametrize(
    ("agent_id", "status", "code"),
    [
        pytest.param("urn:custodes:us:agent:bot", 404, "unknown_jurisdiction", id="outside"),
        pytest.param("not-an-agent-id", 422, "bad_agent_id", id="malformed"),
        pytest.param("urn:custodes:zz:agent:nobody", 404, "unknown_agent", id="unknown"),
        pytest.param("urn:custodes:yy:agent:bot", 404, "mirror_unavailable", id="unmirrored"),
    ],
)
def test_refused_requests_answer_the_error_shape_and_write_nothing(
    alliance: tuple[TestClient, SignedRoster], agent_id: str, status: int, code: str
) -> None:
    client, _ = alliance
    before = snapshot(client)
    response = client.get(f"/api/v1/alliance/agents/{agent_id}/recognitions")
    assert_error(response, status, code)
    assert snapshot(client) == before


# -- decision refs on the node ---------------------------------------------------------
def _decision_with(refs: Any) -> dict[str, Any]:
    record = {
        "v": 1,
        "agent": AGENT,
        "action": "trade_accept",
        "rationale": "100 units at 3.2",
        "decided_at": datetime.now(UTC).isoformat(),
        "refs": refs,
    }
    return sign_envelope(DECISION_TYPE, orjson.dumps(record), [AGENT_KEY]).to_json()


@pytest.mark.parametrize(
    "refs",
    [
        pytest.param([{**REF, "leaf_hash": "not-hex"}], id="leaf-not-hex"),
        pytest.param([{**REF, "leaf_hash": "AB" * 32}], id="leaf-upper-case"),
        pytest.param([{**REF, "index": -1}], id="negative-index"),
        pytest.param([{"origin": "fr.trade.test/log", "index": 7}], id="no-leaf"),
        pytest.param([{**REF, "extra": 1}], id="extra-field"),
        pytest.param([{**REF, "origin": ""}], id="empty-origin"),
        pytest.param([], id="empty-list"),
        pytest.param([REF] * 17, id="too-many"),
        pytest.param("fr:7", id="not-a-list"),
    ],
)
def test_malformed_refs_are_refused_and_nothing_is_written(
    alliance: tuple[TestClient, SignedRoster], refs: Any
) -> None:
    client, _ = alliance
    before = snapshot(client)
    response = post_entries(client, {"entries": [_decision_with(refs)]})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] == "invalid_payload"
    assert snapshot(client) == before


def test_a_committed_decision_with_refs_is_logged_with_them_public(
    alliance: tuple[TestClient, SignedRoster],
) -> None:
    client, _ = alliance
    opened = sign_committed_decision(
        AGENT_KEY, AGENT, "trade_accept", "100 units", refs=[EntryRef.model_validate(REF)]
    )
    response = post_entries(client, {"entries": [opened.to_json()]})
    assert response.status_code == 200, response.text
    index = response.json()["indices"][0]
    served = client.get(f"/api/v1/entries/{index}").json()
    public = orjson.loads(base64.b64decode(served["entry"]["payload"]))
    assert public["refs"] == [REF]
    assert "rationale" not in public  # the clear text stays home
    assert base64.b64decode(served["leaf_hash"]) == leaf_hash(opened.envelope.to_bytes())
