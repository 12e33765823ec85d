"""The home node receives forwarded kill orders: sender from the roster, exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.killswitch.inbox import OrderInbox
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.registry.principals import Principal
from custodes.registry.service import ORDER_TYPE
from custodes.store.db import read_tx
from tests.databases import node_settings
from tests.enrol import REGULATOR_KEY, enrol
from tests.federation.forwarding_support import Parties, found, order_envelope

PATH = "/api/v1/federation/orders"
AGENT_KEY = EnvelopeSigner.from_seed(bytes(range(32)))
MESSAGE = "8e03978e-40d5-43e8-bc93-6894a57f9324"


@pytest.fixture
def alliance(tmp_path: Path) -> Parties:
    parties = {"GB": "member", "FR": "member", "DE": "member", "AU": "partner"}
    return found(tmp_path, "GB", tmp_path / "node", "test.custodes.example/log", parties)


@pytest.fixture
def home(tmp_path: Path, db_url: str, alliance: Parties) -> Iterator[TestClient]:
    settings = node_settings(tmp_path, db_url).model_copy(
        update={"jurisdiction": "GB", "roster_file": alliance.roster_file}
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _node(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


@pytest.fixture
def agent(home: TestClient) -> str:
    return enrol(_node(home), AGENT_KEY, operating=("FR",))


def _post(client: TestClient, message_id: str | None, body: Any, key: str | None = None) -> Any:
    headers = {} if message_id is None else {"Idempotency-Key": key or f'"{message_id}"'}
    return client.post(PATH, json=body, headers=headers)


def _fr_order(alliance: Parties, agent: str, **kw: Any) -> Any:
    return order_envelope(alliance.keys["FR"].regulator, "regulator:fr", agent, **kw)


def test_a_host_regulators_order_is_logged_as_signed_and_replays_answer_alike(
    home: TestClient, alliance: Parties, agent: str
) -> None:
    order = _fr_order(alliance, agent)
    message_id, body = alliance.forward(order)
    first = _post(home, message_id, body)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert (answer["from"], answer["issuer"], answer["replayed"]) == ("FR", "regulator:fr", False)
    node = _node(home)
    size = node.store.sequenced_size()
    again = _post(home, message_id, body)
    assert again.status_code == 200
    assert again.json()["index"] == answer["index"]
    assert again.json()["replayed"] is True
    assert node.store.sequenced_size() == size  # no second entry
    rows = home.get("/api/v1/kill-orders", params={"agent_id": agent}).json()
    assert [(r["authority"], r["territory"]) for r in rows] == [("regulator:fr", "FR")]


def test_the_logged_entry_is_the_regulators_own_envelope(
    home: TestClient, alliance: Parties, agent: str
) -> None:
    order = _fr_order(alliance, agent)
    message_id, body = alliance.forward(order)
    index = _post(home, message_id, body).json()["index"]
    bundle = home.get(f"/api/v1/entries/{index}")
    assert bundle.status_code == 200, bundle.text
    assert bundle.json()["entry"] == order.to_json()
    node = _node(home)
    while node.log.integrate() is not None:
        pass
    report = node.audit()  # the log's own audit verifies the regulator's signature too
    assert report.audited >= index + 1


def test_the_same_key_with_another_order_is_422_and_writes_nothing(
    home: TestClient, alliance: Parties, agent: str
) -> None:
    message_id, body = alliance.forward(_fr_order(alliance, agent))
    assert _post(home, message_id, body).status_code == 201
    size = _node(home).store.sequenced_size()
    _, other = alliance.forward(_fr_order(alliance, agent), message_id=message_id)
    refused = _post(home, message_id, other)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "idempotency_key_reused"
    assert _node(home).store.sequenced_size() == size


def test_the_same_order_under_another_message_is_a_duplicate(
    home: TestClient, alliance: Parties, agent: str
) -> None:
    order = _fr_order(alliance, agent)
    first_id, first = alliance.forward(order)
    assert _post(home, first_id, first).status_code == 201
    second_id, second = alliance.forward(order)
    _refused(home, second_id, second, 409, "order_exists")


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        (None, 400, "missing_idempotency_key"),
        ("not-a-uuid", 400, "bad_idempotency_key"),
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", 400, "bad_idempotency_key"),  # unquoted
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', 422, "idempotency_key_mismatch"),
    ],
)
def test_a_missing_or_malformed_idempotency_key_is_refused(
    home: TestClient, alliance: Parties, agent: str, *, header: str | None, status: int, code: str
) -> None:
    _, body = alliance.forward(_fr_order(alliance, agent))
    size = _node(home).store.sequenced_size()
    headers = {} if header is None else {"Idempotency-Key": header}
    refused = home.post(PATH, json=body, headers=headers)
    assert refused.status_code == status
    assert refused.json()["error"]["code"] == code
    assert _node(home).store.sequenced_size() == size


def _refused(home: TestClient, message_id: str, body: Any, status: int, code: str) -> None:
    size = _node(home).store.sequenced_size()
    answer = _post(home, message_id, body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"}
    assert answer.json()["error"]["code"] == code
    assert _node(home).store.sequenced_size() == size


def test_a_party_not_on_the_roster_is_403(home: TestClient, alliance: Parties, agent: str) -> None:
    stranger = EnvelopeSigner.generate()
    order = order_envelope(stranger, "regulator:xx", agent, territory="XX")
    message_id, body = alliance.forward(order, sender="XX", node=stranger)
    _refused(home, message_id, body, 403, "unknown_party")


def test_a_partner_forwards_no_orders(home: TestClient, alliance: Parties, agent: str) -> None:
    order = order_envelope(alliance.keys["AU"].regulator, "regulator:au", agent, territory="AU")
    message_id, body = alliance.forward(order, sender="AU")
    _refused(home, message_id, body, 403, "partner_no_orders")


def test_a_forward_not_signed_by_the_senders_node_key_is_403(
    home: TestClient, alliance: Parties, agent: str
) -> None:
    forged = EnvelopeSigner.generate()
    message_id, body = alliance.forward(_fr_order(alliance, agent), node=forged)
    _refused(home, message_id, body, 403, "bad_signature")


@pytest.mark.parametrize("signer", ["stranger", "another_members_regulator"])
def test_an_order_not_signed_by_a_regulator_of_the_sender_is_403(
    home: TestClient, alliance: Parties, agent: str, signer: str
) -> None:
    key = EnvelopeSigner.generate() if signer == "stranger" else alliance.keys["DE"].regulator
    order = order_envelope(key, "regulator:fr", agent)
    message_id, body = alliance.forward(order)
    _refused(home, message_id, body, 403, "unknown_regulator")


@pytest.mark.parametrize(
    ("op", "territory"), [("suspend", None), ("revoke", None), ("suspend", "DE")]
)
def test_the_homes_authority_rules_refuse_more_than_a_territorial_suspension(
    home: TestClient, alliance: Parties, agent: str, op: str, territory: str | None
) -> None:
    order = _fr_order(alliance, agent, op=op, territory=territory)
    message_id, body = alliance.forward(order)
    size = _node(home).store.sequenced_size()
    answer = _post(home, message_id, body)
    assert answer.status_code == 403, answer.text
    assert _node(home).store.sequenced_size() == size  # not even the regulator's key
    again = _post(home, message_id, body)  # a refusal is not remembered as an answer
    assert again.status_code == 403


def test_the_home_regulators_key_does_not_speak_for_a_foreign_member(
    home: TestClient, alliance: Parties, agent: str
) -> None:
    order = order_envelope(REGULATOR_KEY, "regulator:gb", agent, territory=None)
    message_id, body = alliance.forward(order)
    _refused(home, message_id, body, 403, "unknown_regulator")


def _order_entries(node: Node, start: int) -> int:
    with read_tx(node.engine) as conn:
        data = node.store.entry_data(conn, start, node.store.sequenced_size())
    return sum(orjson.loads(d)["payloadType"] == ORDER_TYPE for d in data)


def test_concurrent_duplicates_log_the_order_once(
    home: TestClient, alliance: Parties, agent: str
) -> None:
    message_id, body = alliance.forward(_fr_order(alliance, agent))
    size = _node(home).store.sequenced_size()
    answers: list[Any] = []
    start = threading.Barrier(6)

    def send() -> None:
        start.wait()
        answers.append(_post(home, message_id, body))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1
    assert set(statuses) <= {200, 201, 409}
    # One order, never a second (the regulator's key is a signer from the roster already).
    assert _order_entries(_node(home), size) == 1
    indices = {a.json()["index"] for a in answers if a.status_code < 300}
    assert len(indices) == 1


def test_two_workers_receiving_one_message_log_it_once(
    home: TestClient, alliance: Parties, agent: str
) -> None:
    """Each worker has its own in-flight set: only the inbox row (or the order already in
    the log) tells the second that the first handled the message."""
    node = _node(home)
    key = alliance.keys["FR"].regulator
    issuer = Principal(
        "regulator:fr", "regulator", "FR", "FR", key.keyid, frozenset({"orders:write"})
    )
    order = _fr_order(alliance, agent)
    workers = [OrderInbox(node.engine, node.registry) for _ in range(2)]
    size = node.store.sequenced_size()
    answers: list[Any] = []
    start = threading.Barrier(2)

    def receive(inbox: OrderInbox) -> None:
        start.wait()
        answers.append(inbox.receive("FR", MESSAGE, "d", order, issuer))

    threads = [threading.Thread(target=receive, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.replayed for a in answers) == [False, True]
    assert len({a.index for a in answers}) == 1
    assert node.store.sequenced_size() == size + 1
