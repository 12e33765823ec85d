"""Replays: a signed entry is stored once, and an idempotency key names one entry.

Anyone can copy a decision from the public log and post it again; the node must refuse
it (409, naming the index it is stored at) instead of storing it at a new index. A
retry with the same idempotency key is not a replay: it gets its first index (the
SDK's exactly-once delivery). Every case runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from custodes.errors import CustodesError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.errors import DuplicateEntry
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.store import SequencedEntry
from tests.api.support import assert_error, decision, enrol_agent, node_of, post_entries


@pytest.fixture
def api(client: TestClient, agent: EnvelopeSigner) -> TestClient:
    enrol_agent(client, agent)
    return client


def _sent(api: TestClient, body: object) -> list[int]:
    response = post_entries(api, body)
    assert response.status_code == 200, response.text
    indices: list[int] = response.json()["indices"]
    return indices


def test_a_decision_copied_from_the_log_is_refused_naming_its_index(
    api: TestClient, agent: EnvelopeSigner
) -> None:
    [index] = _sent(api, {"entries": [decision(agent, 1)]})
    copied = api.get(f"/api/v1/entries/{index}").json()["entry"]
    size = node_of(api).store.sequenced_size()

    detail = assert_error(post_entries(api, {"entries": [copied]}), 409, "duplicate_entry")

    assert detail == {"index": index}
    assert node_of(api).store.sequenced_size() == size


def test_a_batch_holding_a_replay_stores_none_of_its_entries(
    api: TestClient, agent: EnvelopeSigner
) -> None:
    [index] = _sent(api, {"entries": [decision(agent, 1)]})
    size = node_of(api).store.sequenced_size()

    response = post_entries(api, {"entries": [decision(agent, 2), decision(agent, 1)]})

    assert assert_error(response, 409, "duplicate_entry") == {"entry": 1, "index": index}
    assert node_of(api).store.sequenced_size() == size


def test_the_same_entry_twice_in_one_batch_is_refused(
    api: TestClient, agent: EnvelopeSigner
) -> None:
    size = node_of(api).store.sequenced_size()
    twice = {"entries": [decision(agent, 1), decision(agent, 2), decision(agent, 1)]}

    detail = assert_error(post_entries(api, twice), 409, "duplicate_entry")

    assert detail == {"entry": 2, "same_as_entry": 0}
    assert node_of(api).store.sequenced_size() == size


def test_a_retry_with_the_same_idempotency_key_gets_its_first_index(
    api: TestClient, agent: EnvelopeSigner
) -> None:
    sent = decision(agent, 1, idempotency_key="k-1")
    first = _sent(api, {"entries": [sent]})

    assert _sent(api, {"entries": [sent]}) == first
    assert _sent(api, {"entries": [sent, sent]}) == first * 2


def test_a_different_entry_reusing_an_idempotency_key_is_refused(
    api: TestClient, agent: EnvelopeSigner
) -> None:
    [index] = _sent(api, {"entries": [decision(agent, 1, idempotency_key="k-1")]})
    size = node_of(api).store.sequenced_size()

    other = {"entries": [decision(agent, 2, idempotency_key="k-1")]}
    detail = assert_error(post_entries(api, other), 409, "duplicate_entry")

    assert detail == {"index": index}
    assert node_of(api).store.sequenced_size() == size


def test_a_key_reused_inside_one_batch_is_refused(api: TestClient, agent: EnvelopeSigner) -> None:
    reused = [decision(agent, 1, idempotency_key="k-1"), decision(agent, 2, idempotency_key="k-1")]

    detail = assert_error(post_entries(api, {"entries": reused}), 409, "duplicate_entry")

    assert detail == {"entry": 1, "same_as_entry": 0}


def test_concurrent_copies_of_one_entry_are_stored_once(
    api: TestClient, agent: EnvelopeSigner
) -> None:
    log = node_of(api).log
    copy = decision(agent, 7)

    def send(_: int) -> int | CustodesError:
        try:
            return log.append([copy])[0]
        except DuplicateEntry as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(send, range(16)))

    stored = [o for o in outcomes if isinstance(o, int)]
    assert len(stored) == 1
    assert all(o.detail == {"index": stored[0]} for o in outcomes if not isinstance(o, int))


def _entry(text: str, dedup: tuple[str, str] | None = None) -> SequencedEntry:
    data = canonical_dumps({"text": text})
    return SequencedEntry(data, leaf_hash(data), "application/x-test", dedup)


def test_a_refused_batch_leaves_the_rest_of_its_group_committed(api: TestClient) -> None:
    store = node_of(api).store
    first = store.sequenced_size()
    stored = store.sequence([_entry("a")])[0]

    outcomes = store.sequence_group([[_entry("b")], [_entry("c"), _entry("a")], [_entry("d")]])

    assert outcomes[0] == [first + 1]
    assert isinstance(outcomes[1], DuplicateEntry)
    assert outcomes[1].detail == {"entry": 1, "index": stored}
    assert outcomes[2] == [first + 2]
    assert store.sequenced_size() == first + 3


def test_two_callers_in_one_group_share_a_keyed_entry_but_not_a_keyless_one(
    api: TestClient,
) -> None:
    store = node_of(api).store
    keyed, keyless = _entry("keyed", ("agent", "k")), _entry("keyless")

    outcomes = store.sequence_group([[keyed, keyless], [keyed], [keyless]])

    assert outcomes[1] == outcomes[0][:1]  # type: ignore[index]
    assert isinstance(outcomes[2], DuplicateEntry)
    assert outcomes[2].detail == {"index": outcomes[0][1]}  # type: ignore[index]


def test_the_node_may_reactivate_a_retired_signer_with_its_first_record(api: TestClient) -> None:
    node, key = node_of(api), EnvelopeSigner.generate()
    first = node.register_signer("auditor-key", key.public_key)
    node.register_signer("auditor-key", key.public_key, status="retired")

    again = node.register_signer("auditor-key", key.public_key)  # byte for byte the first

    assert again > first
    assert node.signers.name_of(key.keyid) == "auditor-key"
