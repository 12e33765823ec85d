"""A node's views and proved split views: kept verbatim, logged once, refused until resolved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.config import DEV_ADMIN_TOKEN, Settings
from custodes.federation.evidence import Evidence, open_seen, same_size_evidence
from custodes.federation.views import MISBEHAVIOUR_TYPE, RESOLUTION_TYPE, OriginMisbehaved
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.cosignature import cosignatures_in
from custodes.ledger.dsse import Envelope, key_thumbprint, parse_envelope, verify_envelope
from custodes.ledger.merkle import leaf_hash, root_of
from custodes.ledger.note import NoteSigner, parse_note
from custodes.ledger.witness import format_add_checkpoint
from custodes.node import Node
from tests.databases import node_settings

PEER_ORIGIN = "peer.alliance.test/log"
PEER_LOG = NoteSigner.from_seed(PEER_ORIGIN, bytes(range(32)))


def _note(tag: str, size: int) -> bytes:
    leaves = [leaf_hash(f"{tag}{i}".encode()) for i in range(size)]
    return sign_checkpoint(Checkpoint(PEER_ORIGIN, size, root_of(leaves)), PEER_LOG)


def _split() -> Evidence:
    a, b = (open_seen(_note(tag, 3), PEER_LOG.verifier()) for tag in ("a", "b"))
    return same_size_evidence(PEER_LOG.vkey(), a, b)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """This module's nodes witness the peer log (the ``node`` fixture uses these too)."""
    base = node_settings(tmp_path, db_url)
    return base.model_copy(update={"witnessed_logs": [PEER_LOG.vkey()]})


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _node(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def _entry(node: Node, index: int) -> Envelope:
    node.log.integrate()
    with node.engine.connect() as conn:
        data = node.store.entry_data(conn, index, index + 1)[0]
    return parse_envelope(orjson.loads(data))


def test_the_witness_keeps_what_it_cosigned_verbatim_with_its_cosignature(
    api: TestClient,
) -> None:
    answer = api.post(
        "/witness/add-checkpoint", content=format_add_checkpoint(0, [], _note("a", 2))
    )
    assert answer.status_code == 200, answer.text
    seen = {
        c["origin"]: c["note"]
        for c in api.get("/api/v1/federation/checkpoints").json()["checkpoints"]
    }
    note = parse_note(seen[PEER_ORIGIN].encode())
    assert note.text.startswith(f"{PEER_ORIGIN}\n2\n")
    assert len(cosignatures_in(note, [_node(api).cosigner.verifier()])) == 1


def test_a_view_is_replaced_only_by_a_larger_one(node: Node) -> None:
    views = node.split_views
    for size in (3, 5, 4):
        note = _note("a", size)
        seen = open_seen(note, PEER_LOG.verifier())
        views.observe(PEER_ORIGIN, seen.size, seen.root, note)
    assert views.seen()[PEER_ORIGIN] == _note("a", 5)


def test_evidence_is_logged_once_signed_by_the_node(node: Node) -> None:
    alert = node.split_views.report(_split())
    assert alert is not None
    assert node.split_views.report(_split()) is None  # the same pair, seen again
    assert [a.id for a in node.split_views.alerts()] == [alert.id]
    envelope = _entry(node, alert.entry_index)
    assert envelope.payload_type == MISBEHAVIOUR_TYPE
    assert orjson.loads(envelope.payload) == _split().to_json()
    public = node.entry_signer.public_key
    keys = {key_thumbprint(public): public}
    assert verify_envelope(envelope, keys.get) == [key_thumbprint(public)]


def test_the_witness_refuses_the_origin_until_the_alert_is_resolved(node: Node) -> None:
    alert = node.split_views.report(_split())
    assert alert is not None
    body = format_add_checkpoint(0, [], _note("c", 4))
    with pytest.raises(OriginMisbehaved) as refused:
        node.witness.add_checkpoint(body)
    assert refused.value.status == 403
    assert refused.value.detail["entry_index"] == alert.entry_index

    resolved = node.split_views.resolve(alert.id, "the members readmitted the log")
    assert not resolved.open
    assert resolved.resolution_index is not None
    assert _entry(node, resolved.resolution_index).payload_type == RESOLUTION_TYPE
    node.witness.add_checkpoint(body)  # cosigned again


def test_the_alert_shows_in_metrics_until_resolved_and_resolves_once(api: TestClient) -> None:
    node = _node(api)
    alert = node.split_views.report(_split())
    assert alert is not None
    assert "custodes_split_view_alerts_open 1.0" in api.get("/metrics").text
    admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
    url = f"/api/v1/admin/federation/alerts/{alert.id}/resolve"
    assert api.post(url, json={"reason": "ok"}, headers=admin).status_code == 200
    for path, body, status, code in [
        (url, {"reason": "again"}, 409, "alert_resolved"),
        ("/api/v1/admin/federation/alerts/99/resolve", {"reason": "x"}, 404, "unknown_alert"),
        (url, {"why": "x"}, 422, None),
    ]:
        answer = api.post(path, json=body, headers=admin)
        assert answer.status_code == status, answer.text
        if code is not None:
            assert answer.json()["error"]["code"] == code
    assert "custodes_split_view_alerts_open 0.0" in api.get("/metrics").text
    listed = api.get("/api/v1/federation/alerts").json()["alerts"]
    assert [(a["id"], a["open"]) for a in listed] == [(alert.id, False)]
    assert listed[0]["evidence"]["case"] == "same-size"
