"""A node's forensic slice over HTTP, on a real in-process node with real keys.

The world: two agents of jurisdiction ZZ; the first logs a committed decision naming the
second, a plain halt, and is suspended then reinstated; the second is halted by a
selector order. Each test reads ``POST /api/v1/forensics/slice`` as the public, the
home regulator or an operator, and checks every event's bytes and proof.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.client import Client
from custodes.evals.results import DriftAlert
from custodes.federation.forwarded import FORWARD_TYPE as SENT_FORWARD_TYPE
from custodes.forensics.models import Slice
from custodes.forensics.scan import FORWARD_TYPE, _Concern, _read
from custodes.ledger import leaf_hash, open_checkpoint, parse_vkey, verify_inclusion
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.payloads import ACCESS_TYPE
from custodes.node import Node
from custodes.registry.models import KillOrder, PrincipalRecord, Selector
from custodes.registry.service import ORDER_TYPE
from custodes.sdk.decisions import sign_committed_decision, sign_decision
from custodes.store.db import read_tx
from tests.api.support import assert_error, node_of, post_entries
from tests.databases import database_url, node_settings
from tests.enrol import REGULATOR_KEY, enrol, principal

FIRST = "urn:custodes:zz:agent:agent-1"
SECOND = "urn:custodes:zz:agent:agent-2"
OUTSIDER = "urn:custodes:zz:agent:agent-3"
OTHER_OPERATOR_KEY = EnvelopeSigner.from_seed(b"x" * 32)
AUDITOR_KEY = EnvelopeSigner.from_seed(b"u" * 32)


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str]
    start: datetime
    committed: int  # the committed decision's index
    halt: int
    orders: list[int]  # suspend, reinstate (FIRST); selector suspend (SECOND)
    alert: int  # a drift alert for FIRST

    @property
    def node(self) -> Node:
        return node_of(self.client)

    def ask(self, who: str | None = None, **body: Any) -> Slice:
        answer = self.post(who, **body)
        assert answer.status_code == 200, answer.text
        return Slice.model_validate(answer.json())

    def post(self, who: str | None = None, **body: Any) -> Any:
        body.setdefault("agents", [FIRST])
        body.setdefault("start", self.start.isoformat())
        body.setdefault("end", (datetime.now(UTC) + timedelta(hours=1)).isoformat())
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.post("/api/v1/forensics/slice", json=body, headers=headers)


def _order(node: Node, **fields: Any) -> int:
    regulator = principal(node, "regulator:zz", "regulator", REGULATOR_KEY)
    kill = KillOrder(
        order_id=fields.pop("order_id"),
        reason="forensics test",
        actor=regulator.id,
        at=datetime.now(UTC),
        **fields,
    )
    payload = kill.model_dump_json(exclude_none=True).encode()
    envelope = sign_envelope(ORDER_TYPE, payload, [REGULATOR_KEY])
    return node.registry.issue_order(envelope.to_json(), regulator).index


def _append(client: TestClient, items: list[dict[str, Any]]) -> list[int]:
    response = post_entries(client, {"entries": items})
    assert response.status_code == 200, response.text
    indices: list[int] = response.json()["indices"]
    return indices


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    base: Path = tmp_path_factory.mktemp("forensics")
    settings = node_settings(base, database_url(request, base, "forensics_"))
    first, second, third = (EnvelopeSigner.from_seed(bytes([n]) * 32) for n in (1, 2, 3))
    with TestClient(create_app(settings)) as client:
        node = node_of(client)
        start = datetime.now(UTC) - timedelta(seconds=1)
        assert enrol(node, first, "agent-1") == FIRST
        assert enrol(node, second, "agent-2", sector="energy") == SECOND
        assert enrol(node, third, "agent-3") == OUTSIDER
        node.registry.register_principal(
            PrincipalRecord(
                id="operator:other",
                role="operator",
                jurisdiction="ZZ",
                name="another operator",
                public_key=base64.b64encode(OTHER_OPERATOR_KEY.public_key).decode(),
            )
        )
        opened = sign_committed_decision(
            first, FIRST, "buy 10 lots", "within the mandate", [SECOND], jurisdiction="ZZ"
        )
        plain_halt = sign_decision(first, FIRST, "halt", "asked to stop", idempotency_key="h1")
        outsider = sign_decision(third, OUTSIDER, "sell", "rebalancing", idempotency_key="o1")
        committed, halt, _ = _append(
            client, [opened.to_json(), plain_halt.to_json(), outsider.to_json()]
        )
        orders = [
            _order(node, op="suspend", order_id="forensics-suspend-1", agent_id=FIRST),
            _order(
                node,
                op="reinstate",
                order_id="forensics-lift-1",
                agent_id=FIRST,
                lifts="forensics-suspend-1",
            ),
            _order(
                node,
                op="suspend",
                order_id="forensics-energy-1",
                selector=Selector(sector="energy"),
            ),
        ]
        pids = ["regulator:zz", "operator:acme", "operator:other"]
        principal(node, "auditor:zz", "auditor", AUDITOR_KEY)
        tokens = {pid: str(node.tokens.issue(pid, None, 3600)["token"]) for pid in pids}
        auditor = Client(
            str(client.base_url),
            principal="auditor:zz",
            token=str(node.tokens.issue("auditor:zz", None, 3600)["token"]),
            key=AUDITOR_KEY,
            http=client,
        )
        alert = auditor.publish(_drift(FIRST))
        assert node.log.wait_for_checkpoint(node.store.sequenced_size(), timeout=30)
        yield World(client, tokens, start, committed, halt, orders, alert)


def _drift(agent_id: str) -> DriftAlert:
    return DriftAlert(
        agent_id=agent_id,
        baseline_window=(0, 1),
        current_window=(1, 2),
        baseline_n=1,
        current_n=1,
        categories=("a",),
        baseline_distribution=(1.0,),
        current_distribution=(1.0,),
        d=0.0,
        d_raw=0.0,
        p=1.0,
        level=0.01,
        permutations=1,
        alert=True,
        detected_at=datetime.now(UTC),
    )


def _verify(world: World, found: Slice) -> None:
    """Every event's stored bytes hash to its leaf, and its proof leads to the checkpoint."""
    vkey = world.client.get("/api/v1/node").json()["log_vkey"]
    checkpoint = open_checkpoint(found.checkpoint.encode(), [parse_vkey(vkey)])[0]
    assert checkpoint.size == found.tree_size
    for event in found.events:
        leaf = leaf_hash(base64.b64decode(event.data))
        assert leaf.hex() == event.leaf_hash
        proof = [bytes.fromhex(h) for h in event.proof]
        verify_inclusion(leaf, event.index, checkpoint.size, proof, checkpoint.root_hash)


def _kinds(found: Slice) -> dict[int, str]:
    return {e.index: e.kind for e in found.events}


def test_the_public_sees_every_kind_with_proofs_and_no_clear_text(world: World) -> None:
    found = world.ask()
    _verify(world, found)
    kinds = _kinds(found)
    assert kinds[world.committed] == "decision"
    assert kinds[world.halt] == "halt"
    assert [kinds[i] for i in world.orders[:2]] == ["order", "lift"]
    assert world.orders[2] not in kinds  # the selector order covers SECOND only
    assert kinds[world.alert] == "drift_alert"
    assert "registry" in kinds.values()  # FIRST's registration
    assert all(FIRST in e.agents for e in found.events)
    assert all(e.clear is None for e in found.events)
    assert found.counterparties == []  # the public reads no clear record
    assert [s.agent_id for s in found.registry] == [FIRST]
    assert found.next_cursor is None
    assert found.node == "ZZ"


def test_a_selector_order_is_evidence_for_the_agents_it_covers(world: World) -> None:
    found = world.ask(agents=[SECOND])
    assert _kinds(found)[world.orders[2]] == "order"
    assert found.events[-1].agents == [SECOND]
    _verify(world, found)


def test_the_home_regulator_reads_clear_text_and_the_read_is_logged(world: World) -> None:
    before = world.node.store.sequenced_size()
    found = world.ask("regulator:zz")
    decision = next(e for e in found.events if e.index == world.committed)
    assert decision.clear is not None
    assert decision.clear["record"]["action"] == "buy 10 lots"
    assert found.counterparties == [SECOND]
    assert world.node.log.wait_for_checkpoint(before + 1, timeout=30)
    last = world.client.get(f"/api/v1/entries/{before}")
    assert last.status_code == 200, last.text
    assert last.json()["entry"]["payloadType"] == ACCESS_TYPE


@pytest.mark.parametrize("who", ["operator:acme", "operator:other"])
def test_an_operator_sees_in_clear_what_the_api_shows_it(world: World, who: str) -> None:
    found = world.ask(who)
    decision = next(e for e in found.events if e.index == world.committed)
    headers = {"Authorization": f"Bearer {world.tokens[who]}"}
    single = world.client.get(f"/api/v1/decisions/{world.committed}/clear", headers=headers)
    assert (decision.clear is not None) == (single.status_code == 200)
    assert (decision.clear is not None) == (who == "operator:acme")


def test_pages_against_one_checkpoint_give_the_whole_slice(world: World) -> None:
    whole = world.ask()
    seen: list[int] = []
    cursor = None
    sizes = set()
    for _ in range(50):
        page = world.ask(limit=1, **({"cursor": cursor} if cursor else {}))
        sizes.add(page.tree_size)
        seen += [e.index for e in page.events]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [e.index for e in whole.events]
    assert sizes == {whole.tree_size}


def test_a_window_selects_by_sequencing_time(world: World) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    empty = world.ask(start=later.isoformat(), end=(later + timedelta(hours=1)).isoformat())
    assert empty.events == []
    before = world.ask(
        end=world.start.isoformat(), start=(world.start - timedelta(days=1)).isoformat()
    )
    assert before.events == []
    assert before.registry[0].status == "unregistered"


def test_a_named_entry_is_served_whatever_it_is(world: World) -> None:
    found = world.ask(agents=[SECOND], indices=[world.committed])
    assert world.committed in _kinds(found)
    _verify(world, found)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"end": "2020-01-01T00:00:00Z", "start": "2021-01-01T00:00:00Z"}, 400, "bad_window"),
        ({"agents": [f"urn:custodes:zz:agent:a{n}" for n in range(501)]}, 422, "invalid_request"),
        ({"agents": []}, 422, "invalid_request"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, 400, "bad_cursor"),
        ({"cursor": "!!"}, 400, "bad_cursor"),
        ({"tree_size": 10**9}, 400, "unknown_tree_size"),
        ({"start": "2020-01-01T00:00:00"}, 422, "invalid_request"),
        ({"limit": 0}, 422, "invalid_request"),
        ({"surprise": 1}, 422, "invalid_request"),
    ],
)
def test_bad_asks_are_refused_and_write_nothing(
    world: World, body: dict[str, Any], status: int, code: str
) -> None:
    before = world.node.store.sequenced_size()
    assert_error(world.post("regulator:zz", **body), status, code)
    assert world.node.store.sequenced_size() == before


def test_a_body_that_is_not_json_is_refused(world: World) -> None:
    before = world.node.store.sequenced_size()
    answer = world.client.post(
        "/api/v1/forensics/slice",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_error(answer, 422, "invalid_request")
    huge = world.client.post("/api/v1/forensics/slice", content=b" " * (300 * 1024))
    assert huge.status_code == 413
    assert world.node.store.sequenced_size() == before


def test_a_timeline_is_for_regulators_and_auditors(world: World) -> None:
    body = {"agents": [FIRST], "start": world.start.isoformat(), "end": "2100-01-01T00:00:00Z"}
    assert_error(world.client.post("/api/v1/forensics/timeline", json=body), 401, "missing_token")
    operator = {"Authorization": f"Bearer {world.tokens['operator:acme']}"}
    answer = world.client.post("/api/v1/forensics/timeline", json=body, headers=operator)
    assert_error(answer, 403, "not_investigator")
    regulator = {"Authorization": f"Bearer {world.tokens['regulator:zz']}"}
    answer = world.client.post("/api/v1/forensics/timeline", json=body, headers=regulator)
    assert_error(answer, 400, "no_roster")  # this node is in no alliance
    before = world.node.store.sequenced_size()
    for bad, status, code in [
        ({**body, "end": "2000-01-01T00:00:00Z"}, 400, "bad_window"),
        ({**body, "agents": []}, 422, "invalid_request"),
        ({**body, "depth": 9}, 422, "invalid_request"),
    ]:
        answer = world.client.post("/api/v1/forensics/timeline", json=bad, headers=regulator)
        assert_error(answer, status, code)
    assert world.node.store.sequenced_size() == before


def test_a_narrow_window_holds_only_what_was_sequenced_in_it(world: World) -> None:
    whole = world.ask()
    at = next(e for e in whole.events if e.index == world.committed).sequenced_at
    low, high = at - timedelta(milliseconds=1), at + timedelta(milliseconds=1)
    narrow = world.ask(start=low.isoformat(), end=high.isoformat())
    assert world.committed in _kinds(narrow)
    assert all(low <= e.sequenced_at < high for e in narrow.events)
    assert len(narrow.events) < len(whole.events)


def test_the_decision_index_changes_what_is_read_not_what_is_found(world: World) -> None:
    """With the decision index covering the window, only the asked agents' decisions are
    read; without it, every decision is read and the same entries are kept."""
    node = world.node
    size = node.read_index.catch_up("decisions")
    with read_tx(node.engine) as conn:
        concern = _Concern(conn, [FIRST, SECOND])
        fast, _ = _read(conn, 0, size, concern, 10_000, indexed=True)
        slow, _ = _read(conn, 0, size, concern, 10_000, indexed=False)
    assert [f.index for f in fast] == [f.index for f in slow]
    assert {world.committed, world.halt} <= {f.index for f in fast}


def test_an_order_forwarded_from_another_member_is_evidence(world: World) -> None:
    """A forward's envelope carries another member's order: it is read through."""
    assert FORWARD_TYPE == SENT_FORWARD_TYPE  # the domain's copy of the adapter's type
    order = KillOrder(
        op="suspend",
        order_id="forensics-forwarded-1",
        agent_id=FIRST,
        scope="territorial",
        territory="FR",
        reason="forwarded",
        actor="regulator:fr",
        at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    envelope = sign_envelope(ORDER_TYPE, order.model_dump_json().encode(), [REGULATOR_KEY])
    forward = {"v": 1, "from": "FR", "to": "ZZ", "order": envelope.to_json(), "sent_at": 1}
    with read_tx(world.node.engine) as conn:
        concern = _Concern(conn, [FIRST])
    assert concern.classify(FORWARD_TYPE, forward) == ("order", [FIRST])
    assert concern.classify(FORWARD_TYPE, {**forward, "order": {"payload": "!"}}) is None
    other = {**forward, "order": {**envelope.to_json(), "payloadType": "text/plain"}}
    assert concern.classify(FORWARD_TYPE, other) is None
