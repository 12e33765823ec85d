"""POST /api/v1/entries: bad input gets a clear error and loses nothing.

Every refusal is checked three ways: the status, the one JSON error shape with its
specific code, and an unchanged log (sequenced size and signer list).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.config import Settings
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.payloads import DECISION_TYPE, SIGNER_TYPE
from custodes.ledger.store import SequencedEntry
from custodes.ledger.tiles import MAX_ENTRY_SIZE
from tests.api.support import (
    AGENT,
    assert_error,
    decision,
    node_of,
    open_client,
    post_entries,
    snapshot,
)

Body = bytes | dict[str, Any] | list[Any]
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


# --- building bad entries ---------------------------------------------------------------


def _envelope(payload_type: str, payload: bytes, *signers: EnvelopeSigner) -> dict[str, Any]:
    return sign_envelope(payload_type, payload, signers).to_json()


def _decision_payload(**fields: Any) -> bytes:
    record = {
        "v": 1,
        "agent": AGENT,
        "action": "buy",
        "rationale": "cheap",
        "decided_at": "2025-01-02T03:04:05Z",
    } | fields
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def _urlsafe(agent: EnvelopeSigner, field: str) -> dict[str, Any]:
    """A decision whose ``field`` ("payload" or "sig") is re-spelt in URL-safe base64."""
    for n in range(200):
        env = decision(agent, n, rationale="?????")  # five "?" hold an aligned "Pz8/"
        holder = env if field == "payload" else env["signatures"][0]
        if "+" in holder[field] or "/" in holder[field]:
            holder[field] = holder[field].replace("+", "-").replace("/", "_")
            return env
    raise AssertionError("no decision with '+' or '/' in its base64")


def _sig_with_padding_bits(agent: EnvelopeSigner) -> dict[str, Any]:
    """The same 64 signature bytes, spelt with non-zero padding bits (non-canonical)."""
    env = decision(agent)
    sig = env["signatures"][0]["sig"]
    assert sig.endswith("==")
    last = _B64[_B64.index(sig[-3]) | 1]
    assert base64.b64decode(sig[:-3] + last + "==") == base64.b64decode(sig)
    env["signatures"][0]["sig"] = sig[:-3] + last + "=="
    return env


def _flipped_signature(agent: EnvelopeSigner) -> dict[str, Any]:
    env = decision(agent)
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[0] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    return env


def _swapped_payload(agent: EnvelopeSigner) -> dict[str, Any]:
    """A registered agent's real signature, over a different decision than the payload."""
    env = decision(agent, 0)
    env["payload"] = decision(agent, 1)["payload"]
    return env


def _big_decision(agent: EnvelopeSigner, rationale: int, bulk: int = 3) -> dict[str, Any]:
    """A valid, signed decision whose size is set by the rationale's length."""
    return decision(agent, rationale="r" * rationale, counterparties=["c" * 16_000] * bulk)


def _signatures(count: int, agent: EnvelopeSigner) -> dict[str, Any]:
    """``agent``'s signature plus ``count - 1`` by keys nobody registered."""
    others = [EnvelopeSigner.from_seed(bytes([i + 1]) * 32) for i in range(count - 1)]
    return _envelope(DECISION_TYPE, _decision_payload(), agent, *others)


def _without(env: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in env.items() if k != key}


def _spaced(env: dict[str, Any]) -> bytes:
    return json.dumps(env, sort_keys=True).encode()


def _unsorted(env: dict[str, Any]) -> bytes:
    return json.dumps(dict(reversed(env.items())), separators=(",", ":")).encode()


def _duplicate_key(env: dict[str, Any]) -> bytes:
    return canonical_dumps(env).replace(b'{"payload":', b'{"payload":"AAAA","payload":', 1)


def _escaped(env: dict[str, Any]) -> bytes:
    return canonical_dumps(env).replace(b'"application/', b'"\\u0061pplication/', 1)


Make = Callable[[EnvelopeSigner, EnvelopeSigner], Body]


class Refusal(NamedTuple):
    """How to build a bad body from (registered agent, unregistered key), and the answer."""

    make: Make
    status: int
    code: str


def refusals(cases: list[tuple[str, Make, int, str]]) -> list[Any]:
    return [pytest.param(Refusal(*case[1:]), id=case[0]) for case in cases]


# (id, build(agent, stranger), status, code); the agent is registered, the stranger not.
BAD_ENTRIES: list[tuple[str, Make, int, str]] = [
    ("malformed-json", lambda a, s: b'{"payload":', 400, "malformed_json"),
    ("not-utf8", lambda a, s: b'{"payload":"\xff"}', 400, "malformed_json"),
    ("empty-body", lambda a, s: b"", 400, "malformed_json"),
    ("whitespace", lambda a, s: _spaced(decision(a)), 422, "non_canonical_json"),
    (
        "trailing-newline",
        lambda a, s: canonical_dumps(decision(a)) + b"\n",
        422,
        "non_canonical_json",
    ),
    ("unsorted-keys", lambda a, s: _unsorted(decision(a)), 422, "non_canonical_json"),
    ("duplicate-keys", lambda a, s: _duplicate_key(decision(a)), 422, "non_canonical_json"),
    ("needless-escape", lambda a, s: _escaped(decision(a)), 422, "non_canonical_json"),
    ("urlsafe-payload", lambda a, s: _urlsafe(a, "payload"), 422, "invalid_envelope"),
    ("urlsafe-sig", lambda a, s: _urlsafe(a, "sig"), 422, "invalid_envelope"),
    ("sig-padding-bits", lambda a, s: _sig_with_padding_bits(a), 422, "non_canonical_json"),
    ("not-an-object", lambda a, s: [decision(a)], 422, "invalid_envelope"),
    (
        "missing-signatures",
        lambda a, s: _without(decision(a), "signatures"),
        422,
        "invalid_envelope",
    ),
    ("missing-payload", lambda a, s: _without(decision(a), "payload"), 422, "invalid_envelope"),
    ("extra-field", lambda a, s: decision(a) | {"extra": "x"}, 422, "invalid_envelope"),
    ("empty-signatures", lambda a, s: decision(a) | {"signatures": []}, 422, "invalid_envelope"),
    ("17-signatures", lambda a, s: _signatures(17, a), 422, "invalid_envelope"),
    (
        "signature-extra-field",
        lambda a, s: decision(a) | {"signatures": [decision(a)["signatures"][0] | {"x": "y"}]},
        422,
        "invalid_envelope",
    ),
    (
        "entry-over-65535-bytes",
        lambda a, s: _big_decision(a, 16_000, bulk=4),
        413,
        "entry_too_large",
    ),
    (
        "unsupported-payload-type",
        lambda a, s: _envelope("text/plain", b"hello", a),
        422,
        "unsupported_payload_type",
    ),
    (
        "signer-record-from-outside",
        lambda a, s: _envelope(SIGNER_TYPE, b"{}", a),
        422,
        "unsupported_payload_type",
    ),
    (
        "payload-not-json",
        lambda a, s: _envelope(DECISION_TYPE, b"buy it", a),
        422,
        "invalid_payload",
    ),
    (
        "payload-missing-rationale",
        lambda a, s: _envelope(DECISION_TYPE, _decision_payload(rationale=None), a),
        422,
        "invalid_payload",
    ),
    (
        "payload-version-2",
        lambda a, s: _envelope(DECISION_TYPE, _decision_payload(v=2), a),
        422,
        "invalid_payload",
    ),
    (
        "payload-extra-field",
        lambda a, s: _envelope(DECISION_TYPE, _decision_payload(secret="x"), a),
        422,
        "invalid_payload",
    ),
    ("bad-signature", lambda a, s: _flipped_signature(a), 422, "bad_signature"),
    ("signature-over-other-payload", lambda a, s: _swapped_payload(a), 422, "bad_signature"),
    ("unknown-signer", lambda a, s: decision(s), 403, "unknown_signer"),
    ("signer-mismatch", lambda a, s: decision(a, agent="agent-2"), 403, "signer_mismatch"),
    ("empty-batch", lambda a, s: {"entries": []}, 400, "empty_batch"),
    ("batch-not-a-list", lambda a, s: {"entries": decision(a)}, 400, "invalid_batch"),
]


@pytest.mark.parametrize("refusal", refusals(BAD_ENTRIES))
def test_bad_entry_is_refused_and_nothing_is_written(
    shared_client: TestClient,
    shared_agent: EnvelopeSigner,
    stranger: EnvelopeSigner,
    refusal: Refusal,
) -> None:
    before = snapshot(shared_client)
    response = post_entries(shared_client, refusal.make(shared_agent, stranger))
    assert_error(response, refusal.status, refusal.code)
    assert snapshot(shared_client) == before


def test_valid_decision_is_appended_and_readable(
    agent_client: TestClient, agent: EnvelopeSigner
) -> None:
    """The baseline every refusal above mutates is itself accepted."""
    before = snapshot(agent_client)
    response = post_entries(agent_client, decision(agent))
    assert response.status_code == 200, response.text
    assert response.json() == {"indices": [before.sequenced]}
    stored = agent_client.get(f"/api/v1/entries/{before.sequenced}").json()
    assert stored["entry"] == decision(agent)


def test_refusals_name_the_problem(
    shared_client: TestClient, shared_agent: EnvelopeSigner, stranger: EnvelopeSigner
) -> None:
    """Details a client can act on: which key failed, which keys are unknown, where."""
    bad = assert_error(
        post_entries(shared_client, _flipped_signature(shared_agent)), 422, "bad_signature"
    )
    assert bad["keyid"] == shared_agent.keyid
    unknown = assert_error(post_entries(shared_client, decision(stranger)), 403, "unknown_signer")
    assert unknown["keyids"] == [stranger.keyid]
    invalid = assert_error(
        post_entries(
            shared_client, _envelope(DECISION_TYPE, _decision_payload(rationale=None), shared_agent)
        ),
        422,
        "invalid_payload",
    )
    assert invalid["errors"][0]["loc"] == ["rationale"]


def test_entry_size_limit_is_exactly_65535_bytes(
    shared_client: TestClient, shared_agent: EnvelopeSigner
) -> None:
    def size(rationale: int) -> int:
        return len(canonical_dumps(_big_decision(shared_agent, rationale)))

    low, high = 1, 16_000  # largest rationale whose entry fits: base64 grows 4 bytes per 3
    assert size(low) <= MAX_ENTRY_SIZE < size(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if size(mid) <= MAX_ENTRY_SIZE else (low, mid)
    assert MAX_ENTRY_SIZE - 3 <= size(low) <= MAX_ENTRY_SIZE
    accepted = post_entries(shared_client, _big_decision(shared_agent, low))
    assert accepted.status_code == 200, accepted.text
    before = snapshot(shared_client)
    detail = assert_error(
        post_entries(shared_client, _big_decision(shared_agent, high)), 413, "entry_too_large"
    )
    assert detail == {}
    assert snapshot(shared_client) == before


def test_sixteen_signatures_are_accepted(
    shared_client: TestClient, shared_agent: EnvelopeSigner
) -> None:
    response = post_entries(shared_client, _signatures(16, shared_agent))
    assert response.status_code == 200, response.text


# --- batches ----------------------------------------------------------------------------

BATCH_BREAKERS: list[tuple[str, Make, int, str]] = [
    (
        "invalid-envelope",
        lambda a, s: _without(decision(a, 7), "signatures"),
        422,
        "invalid_envelope",
    ),
    ("entry-too-large", lambda a, s: _big_decision(a, 16_000, bulk=4), 413, "entry_too_large"),
    ("invalid-payload", lambda a, s: _envelope(DECISION_TYPE, b"[]", a), 422, "invalid_payload"),
    ("bad-signature", lambda a, s: _flipped_signature(a), 422, "bad_signature"),
    ("unknown-signer", lambda a, s: decision(s, 7), 403, "unknown_signer"),
    ("signer-mismatch", lambda a, s: decision(a, 7, agent="agent-2"), 403, "signer_mismatch"),
]


@pytest.mark.parametrize("refusal", refusals(BATCH_BREAKERS))
def test_one_bad_entry_rejects_the_whole_batch(
    shared_client: TestClient,
    shared_agent: EnvelopeSigner,
    stranger: EnvelopeSigner,
    refusal: Refusal,
) -> None:
    good = [decision(shared_agent, n, rationale=refusal.code) for n in range(10)]  # not replays
    before = snapshot(shared_client)
    response = post_entries(
        shared_client, {"entries": [*good[:7], refusal.make(shared_agent, stranger), *good[8:]]}
    )
    detail = assert_error(response, refusal.status, refusal.code)
    assert detail["entry"] == 7
    assert response.json()["error"]["message"].startswith("entry 7: ")
    assert snapshot(shared_client) == before
    retried = post_entries(shared_client, {"entries": good})
    assert retried.json() == {"indices": list(range(before.sequenced, before.sequenced + 10))}


def test_large_batch_verified_in_parallel_still_names_the_bad_entry(
    shared_client: TestClient, shared_agent: EnvelopeSigner
) -> None:
    entries = [decision(shared_agent, n) for n in range(100)]
    entries[70] = _flipped_signature(shared_agent)
    entries[90] = _flipped_signature(shared_agent)
    before = snapshot(shared_client)
    detail = assert_error(post_entries(shared_client, {"entries": entries}), 422, "bad_signature")
    assert detail["entry"] == 70
    assert snapshot(shared_client) == before


# --- request limits ---------------------------------------------------------------------

_BODY_LIMIT = 4096
_BATCH_LIMIT = 3


@pytest.fixture
def limited_client(settings: Settings, agent: EnvelopeSigner) -> Iterator[TestClient]:
    yield from open_client(
        settings, agent, max_body_bytes=_BODY_LIMIT, max_batch_entries=_BATCH_LIMIT
    )


def test_body_over_the_limit_is_refused(limited_client: TestClient, agent: EnvelopeSigner) -> None:
    body = canonical_dumps(decision(agent, rationale="r" * _BODY_LIMIT))
    before = snapshot(limited_client)
    assert_error(post_entries(limited_client, body), 413, "body_too_large")
    assert snapshot(limited_client) == before


def test_streamed_body_over_the_limit_is_refused(
    limited_client: TestClient, agent: EnvelopeSigner
) -> None:
    """Without a Content-Length the node counts while reading, and stops at the limit."""
    body = canonical_dumps(decision(agent, rationale="r" * _BODY_LIMIT))
    before = snapshot(limited_client)
    response = limited_client.post("/api/v1/entries", content=iter([body[:100], body[100:]]))
    assert_error(response, 413, "body_too_large")
    assert snapshot(limited_client) == before


def test_batch_over_the_limit_is_refused(limited_client: TestClient, agent: EnvelopeSigner) -> None:
    entries = [decision(agent, n) for n in range(_BATCH_LIMIT + 1)]
    before = snapshot(limited_client)
    assert_error(post_entries(limited_client, {"entries": entries}), 413, "batch_too_large")
    assert snapshot(limited_client) == before
    accepted = post_entries(limited_client, {"entries": entries[:_BATCH_LIMIT]})
    assert accepted.status_code == 200, accepted.text
    assert len(accepted.json()["indices"]) == _BATCH_LIMIT


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    return b'{"a":' * depth + inner + b"}" * depth


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"[" * 100 + b"]" * 100, 422, "json_too_deep", id="lists-100"),
        pytest.param(b"[" * 300 + b"]" * 300, 422, "json_too_deep", id="lists-300"),
        pytest.param(_nested(600), 422, "json_too_deep", id="objects-600"),
        pytest.param(
            b'{"entries":[' + _nested(200) + b"]}", 422, "json_too_deep", id="inside-a-batch"
        ),
        pytest.param(b"[" * 2000 + b"]" * 2000, 400, "malformed_json", id="beyond-the-parser"),
    ],
)
def test_deeply_nested_json_is_a_client_error(
    shared_client: TestClient, body: bytes, status: int, code: str
) -> None:
    before = snapshot(shared_client)
    assert_error(post_entries(shared_client, body), status, code)
    assert snapshot(shared_client) == before


# --- back-pressure ----------------------------------------------------------------------


@pytest.fixture
def tight_client(settings: Settings, agent: EnvelopeSigner) -> Iterator[TestClient]:
    yield from open_client(settings, agent, max_pending_entries=2)


def test_full_sequencer_answers_503_then_recovers(
    tight_client: TestClient, agent: EnvelopeSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = node_of(tight_client).store
    entered, release = threading.Event(), threading.Event()
    sequence = store.sequence_group

    def held(batches: list[list[SequencedEntry]], project: Any = None) -> Any:
        entered.set()
        release.wait(timeout=30)
        return sequence(batches, project)

    monkeypatch.setattr(store, "sequence_group", held)
    before = snapshot(tight_client)
    waiting = {"entries": [decision(agent, 1), decision(agent, 2)]}
    with ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(post_entries, tight_client, waiting)
            assert entered.wait(timeout=10)
            refused = post_entries(tight_client, decision(agent, 3))
            assert snapshot(tight_client) == before
        finally:
            release.set()
        accepted = first.result(timeout=30)
    detail = assert_error(refused, 503, "overloaded")
    assert int(refused.headers["Retry-After"]) >= 1
    assert detail == {"retry_after": int(refused.headers["Retry-After"])}
    assert accepted.json() == {"indices": [before.sequenced, before.sequenced + 1]}
    assert snapshot(tight_client).sequenced == before.sequenced + 2
    retried = post_entries(tight_client, decision(agent, 3))
    assert retried.json() == {"indices": [before.sequenced + 2]}


@pytest.fixture
def own_client(settings: Settings, agent: EnvelopeSigner) -> Iterator[TestClient]:
    yield from open_client(settings, agent)


def _batch(agent: EnvelopeSigner, first: int) -> dict[str, Any]:
    return {"entries": [decision(agent, first + n) for n in range(150)]}


def test_a_batch_waiting_for_its_commit_does_not_hold_up_the_next(
    own_client: TestClient, agent: EnvelopeSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large batches are parsed and verified one at a time, but the wait for the commit
    is outside that: the next batch is verified and queued while the first still waits,
    and the two commit with contiguous indices."""
    client, node = own_client, node_of(own_client)
    entered, release, queued = threading.Event(), threading.Event(), threading.Event()
    sequence_group, sequence = node.store.sequence_group, node.log.sequence
    calls: list[int] = []

    def held(batches: list[list[SequencedEntry]], project: Any = None) -> Any:
        entered.set()
        release.wait(timeout=30)
        return sequence_group(batches, project)

    def counted(entries: list[SequencedEntry], *, started: float | None = None) -> list[int]:
        calls.append(len(entries))
        if len(calls) == 2:
            queued.set()
        return sequence(entries, started=started)

    monkeypatch.setattr(node.store, "sequence_group", held)
    monkeypatch.setattr(node.log, "sequence", counted)
    first, second = _batch(agent, 1000), _batch(agent, 2000)
    assert len(canonical_dumps(first)) > MAX_ENTRY_SIZE  # a large body: verified alone
    start = snapshot(client).sequenced
    with ThreadPoolExecutor(2) as pool:
        try:
            waiting = pool.submit(post_entries, client, first)
            assert entered.wait(timeout=30)
            following = pool.submit(post_entries, client, second)
            assert queued.wait(timeout=30), "the second batch waited for the first's commit"
        finally:
            release.set()
        answers = [waiting.result(timeout=60).json(), following.result(timeout=60).json()]
    assert answers == [
        {"indices": list(range(start, start + 150))},
        {"indices": list(range(start + 150, start + 300))},
    ]
