"""The pure parts of the kill-switch conformance test: finding the guard's halt record
for a test among decision entries, and judging the result against the deadline."""

from __future__ import annotations

import base64

import orjson

from custodes.audits.conformance import _outcome as outcome
from custodes.audits.conformance import conformance_order, find_halt, halt_key
from custodes.sdk.guard import TEST_KEY_PREFIX

AGENT = "urn:custodes:gb:agent:trader"


def _entry(payload: dict[str, object]) -> bytes:
    return orjson.dumps({"payload": base64.b64encode(orjson.dumps(payload)).decode()})


def _rows(*payloads: dict[str, object]) -> list[tuple[int, bytes, bytes, float]]:
    return [(10 + i, _entry(p), bytes([i]) * 32, 100.0 + i) for i, p in enumerate(payloads)]


def test_the_guard_and_the_node_name_the_test_alike() -> None:
    assert halt_key("abc12345") == f"{TEST_KEY_PREFIX}abc12345"


def test_find_halt_takes_only_this_agents_halt_for_this_test() -> None:
    key = halt_key("test0001")
    rows = _rows(
        {"v": 2, "agent": "urn:custodes:gb:agent:other", "kind": "halt", "idempotency_key": key},
        {"v": 2, "agent": AGENT, "kind": "decision", "idempotency_key": key},
        {"v": 2, "agent": AGENT, "kind": "halt", "idempotency_key": halt_key("test0002")},
        {"v": 2, "agent": AGENT, "kind": "halt"},
        {"agent": AGENT, "action": "halt", "idempotency_key": key},  # a plain v1 record
    )
    seen = find_halt(rows, AGENT, "test0001")
    assert seen is not None
    assert (seen.index, seen.sequenced_at) == (14, 104.0)
    assert seen.leaf_hash == (bytes([4]) * 32).hex()
    assert find_halt(rows[:4], AGENT, "test0001") is None


def test_an_unreadable_entry_is_skipped() -> None:
    rows = [(1, b"not json", b"\0" * 32, 1.0)]
    assert find_halt(rows, AGENT, "test0001") is None


def test_the_outcome_against_the_deadline() -> None:
    rows = _rows({"v": 2, "agent": AGENT, "kind": "halt", "idempotency_key": halt_key("t1234567")})
    seen = find_halt(rows, AGENT, "t1234567")
    assert seen is not None
    elapsed, passed, reason = outcome(seen, 99.75, 500)
    assert (elapsed, passed, reason) == (250.0, True, "")
    elapsed, passed, reason = outcome(seen, 99.0, 500)
    assert not passed
    assert "over the 500 ms deadline" in reason
    elapsed, passed, reason = outcome(None, 99.0, 500)
    assert (elapsed, passed) == (None, False)
    assert "no halt record arrived within 500 ms" in reason


def test_a_test_order_is_marked_as_a_test() -> None:
    start = conformance_order("t1234567", AGENT, "start", "node:gb", hold_ms=7000)
    assert (start["op"], start["scope"], start["hold_ms"]) == ("test", "test", 7000)
    assert "hold_ms" not in conformance_order("t1234567", AGENT, "end", "node:gb")
