"""The issuing node forwards a host regulator's order to the agent's home, via its outbox.

The home node is scripted (httpx.MockTransport): it is the peer, outside the thing under
test. The outbox, the relay and the node's checks are real.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.demo.fakes import FakeClock
from custodes.errors import CustodesError
from custodes.federation.forwarding import ForwardRefused, OrderForwarder
from custodes.killswitch.outbox import OrderOutbox
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.registry.principals import Principal
from tests.databases import node_settings
from tests.enrol import OPERATOR_KEY, REGULATOR_KEY, principal
from tests.federation.forwarding_support import Parties, found, order_envelope

GB_AGENT = "urn:custodes:gb:agent:trader"
Script = Callable[[httpx.Request], httpx.Response]


def _alliance(tmp_path: Path, status: str = "member") -> Parties:
    parties = {"FR": status, "GB": "member", "DE": "member"}
    return found(tmp_path, "FR", tmp_path / "node", "test.custodes.example/log", parties)


@pytest.fixture
def fr_node(tmp_path: Path, db_url: str) -> Iterator[Node]:
    alliance = _alliance(tmp_path)
    settings = node_settings(tmp_path, db_url).model_copy(
        update={"jurisdiction": "FR", "roster_file": alliance.roster_file}
    )
    node = Node(settings)
    node.start()
    try:
        yield node
    finally:
        node.close()


class Home:
    """The scripted GB node: answers each forward with the next scripted response."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _forwarder(node: Node, home: Home, clock: FakeClock) -> OrderForwarder:
    http = httpx.Client(transport=httpx.MockTransport(home))
    return OrderForwarder(
        node.federation,
        node.registry,
        OrderOutbox(node.engine, clock=clock),
        node.entry_signer,
        retry_initial=1.0,
        retry_max=8.0,
        clock=clock,
        http=http,
    )


@pytest.fixture
def regulator(fr_node: Node) -> Principal:
    return principal(fr_node, "regulator:fr", "regulator", REGULATOR_KEY)


def _order(territory: str | None = "FR", **kw: Any) -> dict[str, Any]:
    return order_envelope(
        REGULATOR_KEY, "regulator:fr", GB_AGENT, territory=territory, **kw
    ).to_json()


ACCEPTED = httpx.Response(201, json={"index": 7, "order_id": "x", "status": "active"})


def test_a_delivered_forward_carries_the_homes_answer(
    fr_node: Node, regulator: Principal, clock: FakeClock
) -> None:
    home = Home(ACCEPTED)
    forwarder = _forwarder(fr_node, home, clock)
    try:
        row = forwarder.forward(_order(), regulator)
    finally:
        forwarder.stop()
    assert (row.state, row.answer_status, row.answer) == ("delivered", 201, ACCEPTED.json())
    [sent] = home.requests
    assert sent.url.path == "/api/v1/federation/orders"
    assert sent.headers["Idempotency-Key"] == f'"{row.message_id}"'
    message = orjson.loads(base64.b64decode(orjson.loads(sent.content)["payload"]))
    assert (message["from"], message["to"], message["message_id"]) == ("FR", "GB", row.message_id)
    assert message["order"]["payloadType"] == "application/vnd.custodes.kill-order+json"


def test_the_homes_refusal_comes_back_as_the_same_4xx(
    fr_node: Node, regulator: Principal, clock: FakeClock
) -> None:
    error = {"error": {"code": "not_permitted", "message": "host regulators suspend only"}}
    forwarder = _forwarder(fr_node, Home(httpx.Response(403, json=error)), clock)
    try:
        with pytest.raises(ForwardRefused) as refused:
            forwarder.forward(_order(territory=None), regulator)
        [row] = forwarder.outbox.rows()
    finally:
        forwarder.stop()
    assert (refused.value.status, refused.value.code) == (403, "not_permitted")
    assert "GB node" in refused.value.message
    assert "host regulators suspend only" in refused.value.message
    assert refused.value.detail["refused_by"] == "GB"
    assert (row.state, row.answer_status) == ("refused", 403)


@pytest.mark.parametrize(
    "first",
    [
        httpx.ConnectError("connection refused"),
        httpx.Response(503, json={"error": {"code": "store_unavailable", "message": "x"}}),
        httpx.Response(409, json={"error": {"code": "in_flight", "message": "x"}}),
    ],
    ids=["unreachable", "503", "in-flight"],
)
def test_an_unanswered_forward_waits_and_is_delivered_once(
    fr_node: Node, regulator: Principal, clock: FakeClock, first: Any
) -> None:
    home = Home(first, ACCEPTED)
    forwarder = _forwarder(fr_node, home, clock)
    try:
        row = forwarder.forward(_order(), regulator)
        assert row.state == "queued"
        assert forwarder.relay_once() == 0  # not due yet: the backoff holds it back
        clock.advance(1.5)
        assert forwarder.relay_once() == 1
        clock.advance(60)
        assert forwarder.relay_once() == 0
        settled = forwarder.outbox.get(row.message_id)
    finally:
        forwarder.stop()
    assert (settled.state, settled.attempts) == ("delivered", 2)
    assert len(home.requests) == 2
    assert home.requests[0].content == home.requests[1].content  # the same bytes, same key


def test_backoff_doubles_up_to_the_most(
    fr_node: Node, regulator: Principal, clock: FakeClock
) -> None:
    forwarder = _forwarder(fr_node, Home(httpx.ConnectError("down")), clock)
    try:
        row = forwarder.forward(_order(), regulator)
        waits = []
        for _ in range(5):
            current = forwarder.outbox.get(row.message_id)
            waits.append(current.next_attempt - clock())
            clock.set(current.next_attempt)
            forwarder.relay_once()
    finally:
        forwarder.stop()
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (lambda: _order(territory="DE"), "not_own_territory"),
        (lambda: {"payload": "!", "payloadType": "x", "signatures": []}, "invalid_envelope"),
    ],
)
def test_local_checks_refuse_before_anything_is_kept(
    fr_node: Node, regulator: Principal, clock: FakeClock, order: Any, code: str
) -> None:
    home = Home(ACCEPTED)
    forwarder = _forwarder(fr_node, home, clock)
    try:
        with pytest.raises(CustodesError) as refused:
            forwarder.forward(order(), regulator)
        assert forwarder.outbox.rows() == []
    finally:
        forwarder.stop()
    assert refused.value.code == code
    assert 400 <= refused.value.status < 500
    assert home.requests == []


def test_an_order_signed_by_another_key_than_the_regulators_is_refused(
    fr_node: Node, regulator: Principal, clock: FakeClock
) -> None:
    forged = order_envelope(EnvelopeSigner.generate(), "regulator:fr", GB_AGENT).to_json()
    forwarder = _forwarder(fr_node, Home(ACCEPTED), clock)
    try:
        with pytest.raises(CustodesError) as refused:
            forwarder.forward(forged, regulator)
        assert forwarder.outbox.rows() == []
    finally:
        forwarder.stop()
    assert refused.value.status == 403


def test_only_a_regulator_of_this_node_forwards(fr_node: Node, clock: FakeClock) -> None:
    operator = principal(fr_node, "operator:acme", "operator", OPERATOR_KEY)
    order = order_envelope(OPERATOR_KEY, "operator:acme", GB_AGENT).to_json()
    forwarder = _forwarder(fr_node, Home(ACCEPTED), clock)
    try:
        with pytest.raises(CustodesError) as refused:
            forwarder.forward(order, operator)
    finally:
        forwarder.stop()
    assert (refused.value.status, refused.value.code) == (403, "not_host_regulator")


def test_a_partners_regulator_is_refused_at_its_own_node(
    tmp_path: Path, db_url: str, clock: FakeClock
) -> None:
    alliance = _alliance(tmp_path, status="partner")
    settings = node_settings(tmp_path, db_url).model_copy(
        update={"jurisdiction": "FR", "roster_file": alliance.roster_file}
    )
    node = Node(settings)
    node.start()
    forwarder = _forwarder(node, Home(ACCEPTED), clock)
    try:
        reg = principal(node, "regulator:fr", "regulator", REGULATOR_KEY)
        with pytest.raises(CustodesError) as refused:
            forwarder.forward(_order(), reg)
        assert forwarder.outbox.rows() == []
    finally:
        forwarder.stop()
        node.close()
    assert (refused.value.status, refused.value.code) == (403, "partner_no_orders")


def test_the_api_answers_202_while_the_home_is_down_and_shows_the_outbox(
    tmp_path: Path, db_url: str
) -> None:
    alliance = _alliance(tmp_path)  # GB's URL is a closed port
    settings = node_settings(tmp_path, db_url).model_copy(
        update={"jurisdiction": "FR", "roster_file": alliance.roster_file}
    )
    with TestClient(create_app(settings)) as client:
        node: Node = client.app.state.node  # type: ignore[attr-defined]
        principal(node, "regulator:fr", "regulator", REGULATOR_KEY)
        principal(node, "operator:acme", "operator", OPERATOR_KEY)
        token = node.tokens.issue("regulator:fr", None, 600)["token"]
        other = node.tokens.issue("operator:acme", None, 600)["token"]
        sent = client.post(
            "/api/v1/kill-orders", json=_order(), headers={"Authorization": f"Bearer {token}"}
        )
        assert sent.status_code == 202, sent.text
        assert (sent.json()["state"], sent.json()["forwarded_to"]) == ("queued", "GB")
        message_id = sent.json()["message_id"]
        path = f"/api/v1/federation/outbox/{message_id}"
        shown = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert shown.status_code == 200
        assert (shown.json()["state"], shown.json()["issuer"]) == ("queued", "regulator:fr")
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": f"Bearer {other}"}).status_code == 403
        listed = client.get(
            "/api/v1/federation/outbox", headers={"Authorization": f"Bearer {token}"}
        )
        assert [r["message_id"] for r in listed.json()] == [message_id]
        assert client.get("/api/v1/kill-orders").json() == []  # the home logs it, not FR
