"""GET /api/v1/registry/agents/{id}/decisions: an agent's decisions by time, with proofs.

Each answer is checked as an auditor would: the checkpoint opened with the log's key,
each entry's leaf hash computed here from its bytes, each proof verified to that
checkpoint's root. Decisions are logged out of time order, with ties, beside another
agent's, so the order (decided_at, then index), the window and the filter all show.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from custodes.api.readside import Window, decisions_page
from custodes.config import Settings
from custodes.ledger import leaf_hash, open_checkpoint, parse_vkey, verify_inclusion
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.readindex import decision_index, read_index_state
from custodes.node import Node
from custodes.sdk.decisions import sign_decision
from custodes.store.db import write_tx
from tests.api.support import AGENT, assert_error, node_of, post_entries
from tests.enrol import enrol

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OTHER_KEY = EnvelopeSigner.from_seed(b"2" * 32)
PATH = f"/api/v1/registry/agents/{AGENT}/decisions"


def signed(key: EnvelopeSigner, agent: str, n: int, at: datetime) -> dict[str, Any]:
    return sign_decision(key, agent, f"trade #{n}", "within mandate", decided_at=at).to_json()


def stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Timeline:
    """AGENT's decisions: (decided_at, index) of each, in the order the API must list them."""

    client: TestClient
    expected: list[tuple[datetime, int]]


def append(client: TestClient, envelopes: list[dict[str, Any]]) -> list[int]:
    response = post_entries(client, {"entries": envelopes})
    assert response.status_code == 200, response.text
    indices: list[int] = response.json()["indices"]
    assert node_of(client).log.wait_for_checkpoint(indices[-1] + 1, timeout=20)
    return indices


@pytest.fixture(scope="module")
def timeline(shared_client: TestClient, shared_agent: EnvelopeSigner) -> Timeline:
    other = enrol(node_of(shared_client), OTHER_KEY, "agent-2")
    offsets = list(range(200)) + [50] * 5  # five ties at +50 s
    random.Random(7).shuffle(offsets)
    times = [T0 + timedelta(seconds=s) for s in offsets]
    mine = [signed(shared_agent, AGENT, n, at) for n, at in enumerate(times)]
    theirs = [signed(OTHER_KEY, other, n, T0 + timedelta(seconds=n)) for n in range(30)]
    indices = append(shared_client, mine[:100] + theirs + mine[100:])
    mine_indices = indices[:100] + indices[130:]
    return Timeline(shared_client, sorted(zip(times, mine_indices, strict=True)))


def get(client: TestClient, path: str = PATH, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def verified(client: TestClient, page: dict[str, Any]) -> list[int]:
    """The page's indices, once every item is proven against the page's checkpoint."""
    vkey = node_of(client).log_signer.vkey()
    checkpoint, _, _ = open_checkpoint(page["checkpoint"].encode(), [parse_vkey(vkey)])
    assert checkpoint.size == page["tree_size"]
    for item in page["items"]:
        leaf = leaf_hash(canonical_dumps(item["entry"]))
        assert item["leaf_hash"] == leaf.hex()
        assert item["decision"] == orjson.loads(base64.b64decode(item["entry"]["payload"]))
        proof = [base64.b64decode(h) for h in item["proof"]["proof"]]
        assert item["proof"]["tree_size"] == checkpoint.size
        verify_inclusion(leaf, item["index"], checkpoint.size, proof, checkpoint.root_hash)
    return [item["index"] for item in page["items"]]


def every_page(client: TestClient, **params: Any) -> tuple[list[int], set[int]]:
    """Indices over all pages, and the tree sizes the pages answered against."""
    indices: list[int] = []
    sizes: set[int] = set()
    cursor = None
    while True:
        page = get(client, **params, **({"cursor": cursor} if cursor else {}))
        indices += verified(client, page)
        sizes.add(page["tree_size"])
        cursor = page["next_cursor"]
        if cursor is None:
            return indices, sizes


def test_the_cursor_pages_through_every_decision_in_time_order(timeline: Timeline) -> None:
    indices, sizes = every_page(timeline.client, limit=37)
    assert indices == [index for _, index in timeline.expected]
    assert len(sizes) == 1


def test_one_page_holds_up_to_the_limit_and_says_when_more_follow(timeline: Timeline) -> None:
    page = get(timeline.client, limit=1000)
    assert len(page["items"]) == len(timeline.expected)
    assert page["next_cursor"] is None
    assert get(timeline.client, limit=100)["next_cursor"] is not None


def test_from_is_inclusive_and_to_exclusive(timeline: Timeline) -> None:
    start, end = T0 + timedelta(seconds=50), T0 + timedelta(seconds=60)
    indices, _ = every_page(timeline.client, limit=4, **{"from": stamp(start), "to": stamp(end)})
    wanted = [i for at, i in timeline.expected if start <= at < end]
    assert indices == wanted
    assert len(wanted) == 10 + 5  # +50 s six times (five ties), +51 … +59 s once each


def test_instants_in_any_offset_name_the_same_window(timeline: Timeline) -> None:
    start, end = T0 + timedelta(seconds=50), T0 + timedelta(seconds=60)
    plus_two = timezone(timedelta(hours=2))  # 12:00:50Z is 14:00:50+02:00
    shifted = {"from": start.astimezone(plus_two).isoformat(), "to": stamp(end)}
    assert shifted["from"].endswith("+02:00")
    indices, _ = every_page(timeline.client, **shifted)
    assert indices == [i for at, i in timeline.expected if start <= at < end]


def test_an_empty_window_and_a_window_before_everything_list_nothing(timeline: Timeline) -> None:
    at = stamp(T0 + timedelta(seconds=10))
    assert get(timeline.client, **{"from": at, "to": at})["items"] == []
    before = stamp(T0 - timedelta(days=1))
    assert get(timeline.client, to=before)["items"] == []


def test_another_agents_decisions_are_not_listed(timeline: Timeline) -> None:
    other = get(timeline.client, "/api/v1/registry/agents/urn:custodes:zz:agent:agent-2/decisions")
    assert len(other["items"]) == 30
    assert {i["decision"]["agent"] for i in other["items"]} == {"urn:custodes:zz:agent:agent-2"}
    assert not {i["index"] for i in other["items"]} & {i for _, i in timeline.expected}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "yesterday"}, "bad_instant"),
        ({"to": "2026-03-01T12:00:00"}, "bad_instant"),  # no offset: not an instant
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "bad_window"),
        ({"cursor": "not a cursor"}, "bad_cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'{"k":"d","size":1}').decode()}, "bad_cursor"),
        (
            {"cursor": base64.urlsafe_b64encode(b'{"k":"r","size":9,"index":3}').decode()},
            "bad_cursor",
        ),
        (
            {
                "cursor": base64.urlsafe_b64encode(
                    b'{"k":"d","size":99999,"at":0,"index":1}'
                ).decode()
            },
            "bad_cursor",  # no checkpoint was signed at that size
        ),
    ],
)
def test_bad_parameters_are_400_in_the_error_shape(
    timeline: Timeline, params: dict[str, str], code: str
) -> None:
    assert_error(timeline.client.get(PATH, params=params), 400, code)


@pytest.mark.parametrize("limit", [0, 1001])
def test_a_limit_out_of_range_is_refused(timeline: Timeline, limit: int) -> None:
    assert_error(timeline.client.get(PATH, params={"limit": limit}), 422, "invalid_request")


def test_an_unknown_agent_is_404(timeline: Timeline) -> None:
    path = "/api/v1/registry/agents/urn:custodes:zz:agent:nobody/decisions"
    assert_error(timeline.client.get(path), 404, "unknown_agent")


def test_later_pages_answer_against_the_first_pages_checkpoint(
    agent_client: TestClient, agent: EnvelopeSigner
) -> None:
    append(agent_client, [signed(agent, AGENT, n, T0 + timedelta(seconds=n)) for n in range(6)])
    first = get(agent_client, limit=3)
    late = append(agent_client, [signed(agent, AGENT, 99, T0 + timedelta(seconds=4, days=1))])
    second = get(agent_client, limit=3, cursor=first["next_cursor"])
    assert second["tree_size"] == first["tree_size"] < late[0] + 1
    assert second["checkpoint"] == first["checkpoint"]
    assert late[0] not in verified(agent_client, first) + verified(agent_client, second)
    fresh = get(agent_client)
    assert fresh["tree_size"] == late[0] + 1
    assert verified(agent_client, fresh)[-1] == late[0]


@pytest.fixture
def unintegrated(settings: Settings) -> Iterator[Node]:
    """A node that sequences but integrates only when the test says (no integrator)."""
    node = Node(settings)
    node.log.sequencer.start()
    try:
        yield node
    finally:
        node.close()


def test_only_integrated_decisions_are_listed(unintegrated: Node, agent: EnvelopeSigner) -> None:
    node = unintegrated
    agent_id = enrol(node, agent)
    node.log.integrate()
    node.log.append([signed(agent, agent_id, 1, T0)])
    waiting = decisions_page(node, agent_id, Window(), None, 10)
    assert waiting["items"] == []
    assert waiting["tree_size"] == node.store.sequenced_size() - 1
    node.log.integrate()
    listed = decisions_page(node, agent_id, Window(), None, 10)
    assert [i["index"] for i in listed["items"]] == [node.store.sequenced_size() - 1]
    assert listed["tree_size"] == node.store.sequenced_size()


def test_a_cursor_pages_on_completely_after_the_index_is_rebuilt(
    unintegrated: Node, agent: EnvelopeSigner
) -> None:
    node = unintegrated
    agent_id = enrol(node, agent)
    node.log.append([signed(agent, agent_id, n, T0 + timedelta(seconds=n)) for n in range(6)])
    node.log.integrate()
    first = decisions_page(node, agent_id, Window(), None, 3)
    with write_tx(node.engine) as conn:  # rebuilding an index: no rows, watermark 0
        conn.execute(decision_index.delete())
        conn.execute(update(read_index_state).values(size=0))
    second = decisions_page(node, agent_id, Window(), first["next_cursor"], 3)
    listed = [i["index"] for i in first["items"] + second["items"]]
    assert listed == list(range(node.store.sequenced_size() - 6, node.store.sequenced_size()))
