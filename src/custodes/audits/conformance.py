"""Kill-switch conformance tests: does the agent's guard halt, and record it, when told?

The agent's home node pushes a *test* order on the agent's kill-order stream (the same
stream and countersignature as real orders, ``op: "test"``, ``scope: "test"``): never
logged, it suspends nothing in the registry and touches no lease. The guard halts through
its usual halt path (safe state, a ``halt`` decision whose idempotency key is
``killswitch-test:<test id>``) and stays halted until the node's ``end`` push (or its
hold runs out). The node watches its log for that halt record; the result
(``KillswitchTest``: halt observed, time to halt = the record's sequencing time minus
the moment the order was sent, the halt entry, the deadline, passed) is logged, signed
by the node's entry key, as evidence a scheme can require (docs/design/0028).

A guard that is not connected (the agent offline), or one that does not record its halt
before the deadline, gives ``passed: false`` — logged too: it is evidence.

The push reaches the streams this API worker serves (one worker by default; a node run
with several workers must be asked on the worker the agent's guard is connected to).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select

from custodes.audits.models import KILLSWITCH_TEST_TYPE, KillswitchTest, LogRef
from custodes.audits.store import apply_killswitch_test, killswitch_tests
from custodes.errors import BadRequest
from custodes.killswitch.broadcast import OrderBroadcaster
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.service import LogService
from custodes.ledger.store import entries, log_state
from custodes.registry.projection import load_agent
from custodes.store.db import read_tx

__all__ = [
    "TEST_KEY_PREFIX",
    "ConformanceTests",
    "HaltSeen",
    "conformance_order",
    "find_halt",
    "halt_key",
]

TEST_KEY_PREFIX = "killswitch-test:"  # the guard's halt record names the test with it
_HOLD_MARGIN_MS = 2_000  # the guard holds the halt this long past the deadline at most
_POLL_S = 0.02


def halt_key(test_id: str) -> str:
    """The idempotency key of the halt record a guard writes for test ``test_id``."""
    return f"{TEST_KEY_PREFIX}{test_id}"


def conformance_order(
    test_id: str, agent_id: str, phase: str, actor: str, *, hold_ms: int = 0
) -> dict[str, Any]:
    """The test order pushed to the agent's guard (``phase``: start or end)."""
    order: dict[str, Any] = {
        "op": "test",
        "scope": "test",
        "phase": phase,
        "test_id": test_id,
        "agent_id": agent_id,
        "actor": actor,
        "reason": "kill-switch conformance test (a test, not a kill order)",
    }
    if phase == "start":
        order["hold_ms"] = hold_ms
    return order


@dataclass(frozen=True)
class HaltSeen:
    """The halt record of a test, as found in the log."""

    index: int
    leaf_hash: str
    sequenced_at: float


def _payload(data: bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(base64.b64decode(orjson.loads(data)["payload"]))
    except (ValueError, KeyError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None


def find_halt(
    rows: Iterable[tuple[int, bytes, bytes, float]], agent_id: str, test_id: str
) -> HaltSeen | None:
    """The first decision entry among ``rows`` (index, data, leaf hash, sequenced at)
    that is ``agent_id``'s halt record for test ``test_id``."""
    key = halt_key(test_id)
    for index, data, leaf, at in rows:
        payload = _payload(data)
        if payload is None or payload.get("agent") != agent_id:
            continue
        kind = payload.get("kind") if payload.get("v") == 2 else payload.get("action")
        if kind == "halt" and payload.get("idempotency_key") == key:
            return HaltSeen(index, leaf.hex(), at)
    return None


def _outcome(
    seen: HaltSeen | None, sent_at: float, deadline_ms: int
) -> tuple[float | None, bool, str]:
    """Time to halt (ms), passed, and the reason when it did not pass."""
    if seen is None:
        return (
            None,
            False,
            f"no halt record arrived within {deadline_ms} ms: the guard is not connected "
            "to the kill-order stream, or did not halt and record it",
        )
    elapsed = max(0.0, (seen.sequenced_at - sent_at) * 1000)
    if elapsed > deadline_ms:
        return elapsed, False, f"the halt took {elapsed:.0f} ms, over the {deadline_ms} ms deadline"
    return elapsed, True, ""


class ConformanceTests:
    """Runs kill-switch conformance tests from the agent's home node (see module)."""

    def __init__(
        self,
        engine: Engine,
        log: LogService,
        broadcaster: OrderBroadcaster,
        signer: EnvelopeSigner,
        *,
        origin: str,
        actor: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self._log, self._broadcaster = engine, log, broadcaster
        self._signer, self._origin, self._actor, self._clock = signer, origin, actor, clock
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def run(self, agent_id: str, deadline_ms: int) -> tuple[int, KillswitchTest]:
        """Test ``agent_id``'s guard; the logged result's index and record."""
        with read_tx(self._engine) as conn:
            load_agent(conn, agent_id)  # NotFound for an unknown agent
        with self._lock:
            if agent_id in self._running:
                raise BadRequest(
                    f"a kill-switch test of {agent_id} is already running; wait for its result",
                    code="test_running",
                    status=409,
                )
            self._running.add(agent_id)
        try:
            record = self._test(agent_id, deadline_ms)
        finally:
            with self._lock:
                self._running.discard(agent_id)
        envelope = sign_envelope(
            KILLSWITCH_TEST_TYPE, record.model_dump_json().encode(), [self._signer]
        )
        index = self._log.append_own(
            envelope, lambda conn, i: apply_killswitch_test(conn, i, record)
        )
        return index, record

    def _test(self, agent_id: str, deadline_ms: int) -> KillswitchTest:
        test_id = secrets.token_urlsafe(12)
        start = self._sequenced()
        sent_at = self._clock()
        hold = deadline_ms + _HOLD_MARGIN_MS
        self._push(start, conformance_order(test_id, agent_id, "start", self._actor, hold_ms=hold))
        try:
            seen = self._wait(agent_id, test_id, start, sent_at + deadline_ms / 1000)
        finally:
            self._push(self._sequenced(), conformance_order(test_id, agent_id, "end", self._actor))
        elapsed, passed, reason = _outcome(seen, sent_at, deadline_ms)
        return KillswitchTest(
            test_id=test_id,
            agent_id=agent_id,
            sent_at=datetime.fromtimestamp(sent_at, UTC),
            halt_observed=seen is not None,
            halted_at=None if seen is None else datetime.fromtimestamp(seen.sequenced_at, UTC),
            time_to_halt_ms=elapsed,
            halt_recorded=seen is not None,
            halt_entry=None
            if seen is None
            else LogRef(origin=self._origin, index=seen.index, leaf_hash=seen.leaf_hash),
            deadline_ms=deadline_ms,
            passed=passed,
            reason=reason or None,
            actor=self._actor,
            at=datetime.now(UTC),
        )

    def _push(self, index: int, order: dict[str, Any]) -> None:
        self._broadcaster.publish(order["agent_id"], {"index": index, "order": order})

    def _sequenced(self) -> int:
        with read_tx(self._engine) as conn:
            return int(conn.execute(select(log_state.c.sequenced)).scalar_one())

    def _wait(self, agent_id: str, test_id: str, start: int, until: float) -> HaltSeen | None:
        """Watch the log from ``start`` for the test's halt record until ``until``."""
        scanned = start
        while True:
            rows = self._decisions(scanned)
            seen = find_halt(rows, agent_id, test_id)
            if seen is not None:
                return seen
            if rows:
                scanned = rows[-1][0] + 1
            if self._clock() >= until:
                return None
            time.sleep(_POLL_S)

    def _decisions(self, start: int) -> list[tuple[int, bytes, bytes, float]]:
        with read_tx(self._engine) as conn:
            found = conn.execute(
                select(entries.c.idx, entries.c.data, entries.c.leaf_hash, entries.c.sequenced_at)
                .where(entries.c.idx >= start, entries.c.payload_type == DECISION_TYPE)
                .order_by(entries.c.idx)
                .limit(2_000)
            ).all()
        return [
            (int(r.idx), bytes(r.data), bytes(r.leaf_hash), float(r.sequenced_at)) for r in found
        ]

    def results(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Logged test results (for one agent), newest first: index and record."""
        query = select(killswitch_tests).order_by(killswitch_tests.c.entry_index.desc())
        if agent_id is not None:
            query = query.where(killswitch_tests.c.agent_id == agent_id)
        with read_tx(self._engine) as conn:
            rows = conn.execute(query.limit(500)).all()
        if agent_id is not None and not rows:
            with read_tx(self._engine) as conn:
                load_agent(conn, agent_id)
        return [{"index": int(r.entry_index), "record": orjson.loads(r.record)} for r in rows]
