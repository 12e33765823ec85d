"""The SDK guard under the deployment gate, against a real node served over HTTP in this
process: it fails closed where the gate is shut (or when the node refuses the lease for
the gate) and says which gate failed and what would satisfy it, in the node's words."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from custodes.api import create_app
from custodes.api.server import server_config
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.sdk.guard import Guard, Halted
from tests.audits.gate_world import GateWorld, gate_world
from tests.databases import node_settings
from tests.integration.procs import wait_until

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
def guard_for(url: str, world: GateWorld, key: EnvelopeSigner, agent_id: str) -> Iterator[Guard]:
    guard = Guard(
        agent_id,
        key,
        url,
        world.node.entry_signer.public_key,
        safe_state=lambda: None,
        recorder=None,
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
