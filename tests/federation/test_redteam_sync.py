"""Red-teaming deliveries between nodes: the receiver's checks, idempotence, push and pull.

The node under test (GB) runs in-process; FR's and DE's deliveries are what their node
keys (held by the test) sign. The push and pull tests run FR in-process too, its HTTP
client pointed at GB's app.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from custodes.api import create_app
from custodes.config import Settings
from custodes.errors import AuthError
from custodes.federation.redteam_sync import (
    DELIVERIES_PATH,
    DELIVERY_TYPE,
    PULL_PATH,
    Delivery,
    PullRequest,
    RedteamSync,
    last_pulled,
    open_delivery,
    sign_delivery,
    sign_pull,
)
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.node import Node
from custodes.redteam.store import StoredObject, put_object, stix_objects
from custodes.redteam.tlp import Audience, marking_definition
from custodes.store.db import read_tx, write_tx
from tests.databases import node_settings
from tests.federation.forwarding_support import Parties, found
from tests.integration.procs import wait_until

PARTIES = {"GB": "member", "FR": "member", "DE": "member", "AU": "partner"}
DISCLOSURE = "vulnerability--3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"


@pytest.fixture
def alliance(tmp_path: Path) -> Parties:
    return found(tmp_path, "GB", tmp_path / "node", "test.custodes.example/log", PARTIES)


def _settings(tmp_path: Path, db_url: str, alliance: Parties, **update: Any) -> Settings:
    return node_settings(tmp_path, db_url).model_copy(
        update={
            "jurisdiction": "GB",
            "roster_file": alliance.roster_file,
            "redteam_pull_interval": 0.0,  # the tests pull when they mean to
            **update,
        }
    )


@pytest.fixture
def gb(tmp_path: Path, db_url: str, alliance: Parties) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path, db_url, alliance))) as client:
        yield client


def _node(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def _sync(client: TestClient) -> RedteamSync:
    sync: RedteamSync = client.app.state.redteam_sync  # type: ignore[attr-defined]
    return sync


def _audience(
    tlp: str = "amber",
    parties: tuple[str, ...] = ("GB", "FR", "DE", "CA"),
    origin: str = "FR",
    **kw: Any,
) -> Audience:
    return Audience(tlp=tlp, stage="disclosed", origin=origin, parties=parties, **kw)  # type: ignore[arg-type]


def _vulnerability(
    name: str = "jailbreak", modified: str = "2026-12-01T10:00:00.000Z", oid: str | None = None
) -> dict[str, Any]:
    return {
        "type": "vulnerability",
        "spec_version": "2.1",
        "id": oid or f"vulnerability--{uuid.uuid4()}",
        "created": "2026-12-01T10:00:00.000Z",
        "modified": modified,
        "name": name,
    }


def _item(obj: dict[str, Any], audience: Audience | None = None) -> dict[str, Any]:
    return {
        "object": obj,
        "audience": (audience or _audience()).model_dump(mode="json"),
        "disclosure": DISCLOSURE,
    }


def _delivery(
    alliance: Parties,
    items: list[dict[str, Any]],
    *,
    sender: str = "FR",
    to: str = "GB",
    key: EnvelopeSigner | None = None,
) -> dict[str, Any]:
    delivery = Delivery.model_validate(
        {
            "message_id": str(uuid.uuid4()),
            "from": sender,
            "to": to,
            "sent_at": time.time(),
            "objects": items,
        }
    )
    signer = key or alliance.keys[sender].entry
    return sign_delivery(delivery, signer).to_json()


def _all(client: TestClient) -> list[tuple[str, str, str]]:
    with read_tx(_node(client).engine) as conn:
        rows = conn.execute(
            select(stix_objects.c.id, stix_objects.c.modified, stix_objects.c.owner)
        ).all()
    return sorted((r.id, r.modified, r.owner) for r in rows)


def _stored(client: TestClient) -> list[tuple[str, str, str]]:
    """What the node holds besides the shared objects its service stored at start."""
    shared = _shared(client)
    return [r for r in _all(client) if (r[0], r[1]) not in shared]


def _shared(client: TestClient) -> set[tuple[str, str]]:
    here = _node(client).federation.jurisdiction
    kinds = ("marking-definition--", "extension-definition--", "identity--")
    return {(i, m) for i, m, o in _all(client) if o == here and i.startswith(kinds)}


def _count(client: TestClient) -> int:
    return len(_stored(client))


def _refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


# -- the receiver ---------------------------------------------------------------------------
def test_a_delivery_is_stored_once_with_its_owner_and_handed_to_the_service(
    gb: TestClient, alliance: Parties
) -> None:
    told: list[tuple[list[StoredObject], str]] = []
    _sync(gb).receiver.on_received = lambda stored, sender: told.append((stored, sender))
    vuln = _vulnerability()
    body = _delivery(alliance, [_item(vuln)])
    first = gb.post(DELIVERIES_PATH, json=body)
    assert first.status_code == 200, first.text
    assert (first.json()["stored"], first.json()["known"]) == (1, 0)
    assert _stored(gb) == [(vuln["id"], vuln["modified"], "FR")]
    assert [(len(s), who) for s, who in told] == [(1, "FR")]
    assert told[0][0][0].object == vuln
    again = gb.post(DELIVERIES_PATH, json=_delivery(alliance, [_item(vuln)]))
    assert (again.json()["stored"], again.json()["known"]) == (0, 1)
    assert len(told) == 1  # nothing new: the service is not told twice
    newer = _vulnerability(modified="2026-12-02T10:00:00.000Z", oid=vuln["id"])
    assert gb.post(DELIVERIES_PATH, json=_delivery(alliance, [_item(newer)])).json()["stored"] == 1
    assert len(_stored(gb)) == 2  # versions by modified, one id


def test_a_delivery_signed_by_another_key_is_refused(gb: TestClient, alliance: Parties) -> None:
    body = _delivery(alliance, [_item(_vulnerability())], key=alliance.keys["DE"].entry)
    _refused(gb.post(DELIVERIES_PATH, json=body), 403, "bad_signature")
    assert _count(gb) == 0


def test_a_delivery_from_a_party_not_on_the_roster_is_refused(
    gb: TestClient, alliance: Parties
) -> None:
    body = _delivery(
        alliance, [_item(_vulnerability())], sender="JP", key=EnvelopeSigner.generate()
    )
    _refused(gb.post(DELIVERIES_PATH, json=body), 403, "unknown_party")
    assert _count(gb) == 0


def test_a_delivery_to_another_party_is_refused(gb: TestClient, alliance: Parties) -> None:
    body = _delivery(alliance, [_item(_vulnerability())], to="DE")
    _refused(gb.post(DELIVERIES_PATH, json=body), 422, "wrong_recipient")
    assert _count(gb) == 0


def test_an_object_this_party_may_not_hold_refuses_the_whole_delivery(
    gb: TestClient, alliance: Parties
) -> None:
    fine = _item(_vulnerability())
    for audience in (
        _audience(parties=("FR", "DE")),  # AMBER, not naming GB
        _audience(tlp="red", parties=("DE",), principals=("DE/regulator:de",)),
        Audience(tlp="amber", stage="triaged", origin="FR", parties=("GB",)),  # not disclosed
        _audience(tlp="unknown"),
    ):
        body = _delivery(alliance, [fine, _item(_vulnerability("secret"), audience)])
        _refused(gb.post(DELIVERIES_PATH, json=body), 403, "not_entitled")
    assert _count(gb) == 0


def test_an_id_held_from_another_owner_is_refused_but_an_identical_shared_copy_is_not(
    gb: TestClient, alliance: Parties
) -> None:
    held = _vulnerability()
    clear = _audience(tlp="clear", parties=(), origin="DE")
    marking = marking_definition("amber")
    with write_tx(_node(gb).engine) as conn:
        put_object(conn, held, owner="DE", audience=clear)
        put_object(conn, marking, owner="GB", audience=clear)
    fork = _vulnerability(modified="2026-12-05T10:00:00.000Z", oid=held["id"])
    body = _delivery(alliance, [_item(_vulnerability()), _item(fork)])
    _refused(gb.post(DELIVERIES_PATH, json=body), 409, "owned_elsewhere")
    changed = {**held, "name": "rewritten"}
    _refused(
        gb.post(DELIVERIES_PATH, json=_delivery(alliance, [_item(changed)])),
        409,
        "version_conflict",
    )
    assert _stored(gb) == [(held["id"], held["modified"], "DE")]
    same = gb.post(DELIVERIES_PATH, json=_delivery(alliance, [_item(marking, clear)]))
    assert (same.status_code, same.json()["stored"]) == (200, 0)
    owners = {o for i, _m, o in _all(gb) if i == marking["id"]}
    assert owners == {"GB"}  # still this node's own copy


def test_a_tampered_delivery_is_refused(gb: TestClient, alliance: Parties) -> None:
    body = _delivery(alliance, [_item(_vulnerability(), _audience(parties=("FR",)))])
    payload = orjson.loads(base64.b64decode(body["payload"]))
    payload["objects"][0]["audience"]["parties"] = ["FR", "GB"]  # widen it after signing
    body["payload"] = base64.b64encode(orjson.dumps(payload)).decode()
    _refused(gb.post(DELIVERIES_PATH, json=body), 403, "bad_signature")
    assert _count(gb) == 0


def _signed_raw(alliance: Parties, payload: dict[str, Any]) -> dict[str, Any]:
    """A delivery envelope over ``payload`` as is (FR's key), bypassing our model."""
    raw = orjson.dumps(payload)
    return sign_envelope(DELIVERY_TYPE, raw, [alliance.keys["FR"].entry]).to_json()


def test_invalid_stix_and_bad_shapes_are_422(gb: TestClient, alliance: Parties) -> None:
    no_spec = {k: v for k, v in _vulnerability().items() if k != "spec_version"}
    wrong_id = {**_vulnerability(), "id": f"indicator--{uuid.uuid4()}"}
    for obj in (no_spec, wrong_id):
        payload = {
            "v": 1,
            "message_id": str(uuid.uuid4()),
            "from": "FR",
            "to": "GB",
            "sent_at": time.time(),
            "objects": [_item(_vulnerability()), _item(obj)],
        }
        _refused(
            gb.post(DELIVERIES_PATH, json=_signed_raw(alliance, payload)), 422, "invalid_payload"
        )
    _refused(gb.post(DELIVERIES_PATH, content=b"{not json"), 400, "invalid_json")
    assert _count(gb) == 0


def test_an_oversized_delivery_is_413_before_it_is_read(
    tmp_path: Path, db_url: str, alliance: Parties
) -> None:
    settings = _settings(tmp_path, db_url, alliance, max_body_bytes=64 * 1024)
    with TestClient(create_app(settings)) as gb:
        items = [_item(_vulnerability("x" * 2000)) for _ in range(60)]
        _refused(gb.post(DELIVERIES_PATH, json=_delivery(alliance, items)), 413, "body_too_large")
        assert _count(gb) == 0


# -- pull answers ---------------------------------------------------------------------------
def _pull(
    alliance: Parties,
    sender: str = "FR",
    *,
    after: int = 0,
    at: float | None = None,
    key: EnvelopeSigner | None = None,
) -> dict[str, Any]:
    request = PullRequest.model_validate(
        {"from": sender, "to": "GB", "after": after, "at": time.time() if at is None else at}
    )
    return sign_pull(request, key or alliance.keys[sender].entry).to_json()


def _seed_own(client: TestClient, now: float) -> dict[str, dict[str, Any]]:
    """GB's own objects under several audiences, and one DE object held here."""
    objects = {
        "amber-all": (_vulnerability(), _audience(origin="GB")),
        "amber-de": (_vulnerability(), _audience(origin="GB", parties=("GB", "DE"))),
        "green": (_vulnerability(), _audience(tlp="green", parties=(), origin="GB")),
        "red-fr": (
            _vulnerability(),
            _audience(tlp="red", parties=("FR",), origin="GB", principals=("FR/regulator:fr",)),
        ),
        "triaged": (_vulnerability(), Audience(tlp="clear", stage="triaged", origin="GB")),
        "de-owned": (_vulnerability(), _audience(tlp="green", parties=(), origin="DE")),
    }
    with write_tx(_node(client).engine) as conn:
        # the shared objects the service stored at start, a minute ago: settled
        aged = stix_objects.c.date_added - 60
        conn.execute(update(stix_objects).values(date_added=aged))
        # a shared object every node stores itself: never sent
        put_object(
            conn, marking_definition("green"), owner="GB", audience=_audience("clear"), now=now
        )
        for name, (obj, audience) in objects.items():
            owner = "DE" if name == "de-owned" else "GB"
            put_object(conn, obj, owner=owner, audience=audience, now=now)
    return {name: obj for name, (obj, _a) in objects.items()}


def _answer(client: TestClient, alliance: Parties, requester: str = "FR") -> Delivery:
    response = client.post(PULL_PATH, json=_pull(alliance, requester))
    assert response.status_code == 200, response.text
    federation = _node(client).federation
    # the answer is a delivery GB signed for the requester: open it as the requester would
    payload = orjson.loads(base64.b64decode(response.json()["payload"]))
    assert (payload["from"], payload["to"]) == ("GB", requester)
    assert federation.party("GB") is not None
    return Delivery.model_validate(payload)


def test_a_pull_answers_only_the_owners_objects_the_requester_may_hold(
    gb: TestClient, alliance: Parties
) -> None:
    seeded = _seed_own(gb, now=time.time() - 60)
    ids = {name: obj["id"] for name, obj in seeded.items()}
    fr = {o.object["id"] for o in _answer(gb, alliance, "FR").objects}
    assert fr == {ids["amber-all"], ids["green"], ids["red-fr"]}
    au = _answer(gb, alliance, "AU")
    assert {o.object["id"] for o in au.objects} == {ids["green"]}
    de = _answer(gb, alliance, "DE")
    assert {o.object["id"] for o in de.objects} == {ids["amber-all"], ids["amber-de"], ids["green"]}
    assert de.reached == max(_seqs(gb, owner="GB"))  # all settled: all scanned
    assert de.more is False


def _seqs(client: TestClient, owner: str) -> list[int]:
    query = select(stix_objects.c.seq).where(stix_objects.c.owner == owner)
    with read_tx(_node(client).engine) as conn:
        return [int(s) for s in conn.execute(query).scalars()]


def test_a_pull_does_not_reach_past_rows_still_settling(gb: TestClient, alliance: Parties) -> None:
    _seed_own(gb, now=time.time())
    answer = _answer(gb, alliance, "DE")
    assert len(answer.objects) == 3  # sent now...
    sent = {o.object["id"] for o in answer.objects}
    query = select(stix_objects.c.seq).where(stix_objects.c.id.in_(sent))
    with read_tx(_node(gb).engine) as conn:
        first = min(conn.execute(query).scalars())
    assert answer.reached < first  # ...and again next time, in case an older row commits late
    again = _answer(gb, alliance, "DE")
    assert {o.object["id"] for o in again.objects} == sent


def test_pull_requests_that_fail_their_checks_are_refused(
    gb: TestClient, alliance: Parties
) -> None:
    _seed_own(gb, now=time.time() - 60)
    cases = [
        (_pull(alliance, at=time.time() - 3600), 403, "stale_request"),
        (_pull(alliance, key=alliance.keys["DE"].entry), 403, "bad_signature"),
        (_pull(alliance, "JP", key=EnvelopeSigner.generate()), 403, "unknown_party"),
        (_delivery(alliance, []), 422, "unsupported_payload_type"),
    ]
    for body, status, code in cases:
        _refused(gb.post(PULL_PATH, json=body), status, code)


# -- push and pull between two in-process nodes ---------------------------------------------
@contextmanager
def _fr_node(tmp_path: Path, alliance: Parties, gb: TestClient) -> Iterator[TestClient]:
    """FR's node (the keys the roster names), its HTTP to peers going to GB's app."""
    settings = Settings(
        data_dir=tmp_path / "party-fr",
        database_url=f"sqlite:///{tmp_path / 'fr.db'}",
        origin="fr.alliance.test/log",
        jurisdiction="FR",
        roster_file=alliance.roster_file,
        checkpoint_interval=0.2,
        integrate_delay=0.0,
        deployment_gate=False,
        redteam_pull_interval=0.0,
    )
    with TestClient(create_app(settings)) as fr:
        sync = _sync(fr)
        own = sync.pusher.http
        sync.pusher.http = gb
        try:
            yield fr
        finally:
            sync.pusher.http = own


def _publish(
    client: TestClient, objects: list[tuple[dict[str, Any], Audience]]
) -> list[StoredObject]:
    with write_tx(_node(client).engine) as conn:
        stored = [
            put_object(conn, o, owner="FR", audience=a, disclosure=DISCLOSURE) for o, a in objects
        ]
    return [s for s in stored if s is not None]


def test_published_objects_are_pushed_to_an_entitled_peer(
    tmp_path: Path, gb: TestClient, alliance: Parties
) -> None:
    with _fr_node(tmp_path, alliance, gb) as fr:
        shared, withheld = _vulnerability("for GB"), _vulnerability("not for GB")
        stored = _publish(fr, [(shared, _audience()), (withheld, _audience(parties=("FR", "DE")))])
        _sync(fr).pusher.push(stored)
        wait_until("GB holds the pushed object", lambda: _stored(gb), timeout=10)
        assert _stored(gb) == [(shared["id"], shared["modified"], "FR")]


def test_a_node_that_missed_the_push_catches_up_by_pull(
    tmp_path: Path, gb: TestClient, alliance: Parties
) -> None:
    with _fr_node(tmp_path, alliance, gb) as fr:
        old, new, de_only = _vulnerability("old"), _vulnerability("new"), _vulnerability("DE")
        with write_tx(_node(fr).engine) as conn:
            conn.execute(update(stix_objects).values(date_added=stix_objects.c.date_added - 90))
            put_object(conn, old, owner="FR", audience=_audience(), now=time.time() - 60)
            settled = put_object(
                conn,
                de_only,
                owner="FR",
                audience=_audience(parties=("DE",)),
                now=time.time() - 59,
            )
        assert settled is not None
        _publish(fr, [(new, _audience())])
        gb_sync = _sync(gb)
        own = gb_sync.pusher.http
        gb_sync.pusher.http = fr  # GB asks FR
        try:
            fr_party = _node(gb).federation.party("FR")
            assert fr_party is not None
            assert gb_sync.puller.pull_from(fr_party) == 2
            assert gb_sync.puller.pull_from(fr_party) == 0  # again: nothing new
        finally:
            gb_sync.pusher.http = own
        assert {i for i, _m, _o in _stored(gb)} == {old["id"], new["id"]}
        assert last_pulled(_node(gb).engine, "FR") == settled.seq  # the settled rows only


def test_a_pull_answer_from_someone_else_is_refused(gb: TestClient, alliance: Parties) -> None:
    body = _delivery(alliance, [], sender="DE")
    federation = _node(gb).federation
    with pytest.raises(AuthError) as raised:
        open_delivery(body, federation, sender="FR")
    assert raised.value.code == "wrong_sender"


def test_an_object_stix2_validator_refuses_refuses_the_delivery(
    gb: TestClient, alliance: Parties
) -> None:
    nameless = {k: v for k, v in _vulnerability().items() if k != "name"}
    body = _delivery(alliance, [_item(_vulnerability()), _item(nameless)])
    answer = gb.post(DELIVERIES_PATH, json=body)
    _refused(answer, 422, "invalid_stix")
    assert list(answer.json()["error"]["detail"]["invalid"]) == [nameless["id"]]
    assert _count(gb) == 0
