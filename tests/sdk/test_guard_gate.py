"""The SDK guard under the deployment gate, against a real node served over HTTP in this
process: it fails closed where the gate is shut (or when the node refuses the lease for
the gate) and says which gate failed and what would satisfy it, in the node's words."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from custodes.api import create_app
from custodes.api.server import server_config
from custodes.audits.conformance import conformance_order
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.sdk.guard import Guard, GuardState, Halted
from custodes.sdk.leases import Lease
from tests.audits.gate_world import GateWorld, gate_world
from tests.databases import node_settings
from tests.integration.procs import wait_until
from tests.registry.support import issue

WAIT_S = 20.0


@contextlib.contextmanager
def served(tmp_path: Path) -> Iterator[tuple[str, Node]]:
    """A node's app on a free loopback port: its URL and its Node."""
    settings = node_settings(tmp_path, f"sqlite:///{tmp_path / 'node.db'}")
    app: FastAPI = create_app(settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(server_config(app, settings, "127.0.0.1", port, log_config=None))
    thread = threading.Thread(target=server.run, name="gate-node", daemon=True)
    thread.start()
    try:
        wait_until("the node to start", lambda: server.started, WAIT_S)
        yield f"http://127.0.0.1:{port}", app.state.node
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT_S)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[str, GateWorld]]:
    with served(tmp_path) as (url, node):
        yield url, gate_world(node, tmp_path)


@contextlib.contextmanager
def guard_for(
    url: str,
    world: GateWorld,
    key: EnvelopeSigner,
    agent_id: str,
    *,
    recorder: Any = None,
    safe_state: Callable[[], None] = lambda: None,
) -> Iterator[Guard]:
    guard = Guard(
        agent_id,
        key,
        url,
        world.node.entry_signer.public_key,
        safe_state=safe_state,
        recorder=recorder,
        retry_initial=0.05,
        retry_max=0.2,
        poll=0.05,
    )
    guard.start()
    try:
        yield guard
    finally:
        guard.stop()


def _refusal(guard: Guard, territory: str) -> Halted | None:
    try:
        guard.check(territory)
    except Halted as halted:
        return halted
    return None


def test_the_guard_refuses_where_the_gate_is_shut_and_says_why(
    world: tuple[str, GateWorld],
) -> None:
    url, gated = world
    key = EnvelopeSigner.generate()
    agent_id, digest = gated.agent(key, operating=("FR",))
    gated.decide(agent_id, "ZZ", model=digest)
    with guard_for(url, gated, key, agent_id) as guard:
        assert guard.wait_for_lease(WAIT_S)
        guard.check("ZZ")
        refusal = _refusal(guard, "FR")
        assert refusal is not None
        assert refusal.reason == "deployment_gate"
        assert f"FR recognises no audit of {agent_id}" in refusal.message
        assert (
            f"what would satisfy it: an attestation under the common scheme for model {digest}"
            in refusal.message
        )
        assert "recognised by FR and in force" in refusal.detail["gate"]


def test_the_guard_fails_closed_when_the_gate_refuses_the_lease(
    world: tuple[str, GateWorld],
) -> None:
    url, gated = world
    key = EnvelopeSigner.generate()
    agent_id, digest = gated.agent(key, operating=())
    with guard_for(url, gated, key, agent_id) as guard:
        halted = wait_until(
            "the gate's refusal to reach the guard",
            lambda: (h := guard.halted()) is not None and h.reason == "deployment_gate" and h,
            WAIT_S,
        )
        assert f"ZZ recognises no audit of {agent_id}" in halted.message
        assert digest in halted.message
        assert halted.detail["failures"][0]["jurisdiction"] == "ZZ"
        assert _refusal(guard, "ZZ") is not None


def test_a_recognition_opens_the_gate_at_the_next_renewal(world: tuple[str, GateWorld]) -> None:
    url, gated = world
    key = EnvelopeSigner.generate()
    agent_id, digest = gated.agent(key, operating=())
    with guard_for(url, gated, key, agent_id) as guard:
        wait_until(
            "the gate's refusal",
            lambda: guard.halted() is not None and guard.halted().reason == "deployment_gate",
            WAIT_S,
        )  # type: ignore[union-attr]
        gated.decide(agent_id, "ZZ", model=digest)
        wait_until("a lease once recognised", lambda: _refusal(guard, "ZZ") is None, WAIT_S)


# -- the pure core: a conformance test in GuardState -------------------------------------
def _state_with_lease(now: float) -> GuardState:
    state = GuardState("urn:custodes:zz:agent:a")
    lease = Lease("l1", "urn:custodes:zz:agent:a", "k", frozenset({"ZZ"}), now, now + 60, "n")
    state.on_lease(lease)
    return state


def test_a_conformance_test_halts_until_it_ends_and_is_no_kill_order() -> None:
    state = _state_with_lease(1000.0)
    state.start_test("test0001", 1010.0)
    halted = state.halted(1001.0)
    assert halted is not None
    assert halted.reason == "conformance_test"
    assert halted.detail["test_id"] == "test0001"
    assert state.active_orders() == ()
    assert state.horizon == -1
    assert not state.end_test("test0002")
    assert state.end_test("test0001")
    assert state.halted(1001.0) is None


def test_a_conformance_test_halt_lapses_at_its_hold() -> None:
    state = _state_with_lease(1000.0)
    state.start_test("test0001", 1010.0)
    assert state.next_change(1001.0) == 1010.0
    assert state.refusal("ZZ", 1009.0) is not None
    assert state.refusal("ZZ", 1010.0) is None


class Halts:
    """The guard's recorder as far as these tests look: the halts it is asked to record
    (the node's log is not what they test)."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []

    def record(self, action: str, rationale: str, **kwargs: Any) -> str:
        self.keys.append(kwargs.get("idempotency_key") if action == "halt" else "not a halt")
        return "key"


def _push(node: Node, test_id: str, agent_id: str, phase: str) -> None:
    """The node's own test push (as ConformanceTests sends it), on the agent's stream."""
    hold = {"hold_ms": 60_000} if phase == "start" else {}
    order = conformance_order(test_id, agent_id, phase, "node:zz", **hold)
    node.broadcaster.publish(agent_id, {"index": 0, "order": order})


def test_a_real_order_during_a_test_keeps_the_agent_halted_with_its_own_halt_record(
    world: tuple[str, GateWorld],
) -> None:
    url, gated = world
    key = EnvelopeSigner.generate()
    agent_id, _digest = gated.agent(key, sector="retail")
    halts, safe_states = Halts(), []
    with guard_for(
        url, gated, key, agent_id, recorder=halts, safe_state=lambda: safe_states.append(1)
    ) as guard:
        assert guard.wait_for_lease(WAIT_S)
        wait_until("the guard's stream", lambda: guard.stream_connected, WAIT_S)
        _push(gated.node, "test0001", agent_id, "start")
        wait_until("the test's halt", lambda: halts.keys == ["killswitch-test:test0001"], WAIT_S)
        issue(gated.node, gated.world.home, "suspend", agent_id=agent_id)
        wait_until("the order at the guard", lambda: guard.halted().reason == "kill_order", WAIT_S)  # type: ignore[union-attr]
        _push(gated.node, "test0001", agent_id, "end")
        wait_until("the order's halt record", lambda: len(halts.keys) == 2, WAIT_S)
        assert halts.keys[1] is None  # a fresh key: the order's halt, not the test's
        assert guard.halted().reason == "kill_order"  # type: ignore[union-attr]
        assert safe_states == [1]


def test_the_guard_resumes_when_the_test_ends(world: tuple[str, GateWorld]) -> None:
    url, gated = world
    key = EnvelopeSigner.generate()
    agent_id, _digest = gated.agent(key, sector="retail")
    halts = Halts()
    with guard_for(url, gated, key, agent_id, recorder=halts) as guard:
        assert guard.wait_for_lease(WAIT_S)
        wait_until("the guard's stream", lambda: guard.stream_connected, WAIT_S)
        _push(gated.node, "test0002", agent_id, "start")
        wait_until("the test's halt", lambda: guard.halted() is not None, WAIT_S)
        assert _refusal(guard, "ZZ").reason == "conformance_test"  # type: ignore[union-attr]
        _push(gated.node, "test0002", agent_id, "end")
        wait_until("the guard to resume", lambda: _refusal(guard, "ZZ") is None, WAIT_S)
        assert halts.keys == ["killswitch-test:test0002"]


def test_an_agent_awaiting_its_audit_still_passes_its_kill_switch_test(
    world: tuple[str, GateWorld],
) -> None:
    """The gate holds no lease for an unaudited critical agent, so its guard is halted
    already; the test's order must still reach it and its halt be recorded (the test is
    evidence its audit needs)."""
    url, gated = world
    key = EnvelopeSigner.generate()
    agent_id, _digest = gated.agent(key, operating=())
    halts = Halts()
    with guard_for(url, gated, key, agent_id, recorder=halts) as guard:
        wait_until(
            "the gate's refusal",
            lambda: (h := guard.halted()) is not None and h.reason == "deployment_gate",
            WAIT_S,
        )
        wait_until("the guard's stream", lambda: guard.stream_connected, WAIT_S)
        _push(gated.node, "test0003", agent_id, "start")
        wait_until("the test's halt", lambda: halts.keys == ["killswitch-test:test0003"], WAIT_S)
        _push(gated.node, "test0003", agent_id, "end")
        assert guard.halted().reason == "deployment_gate"  # type: ignore[union-attr]
