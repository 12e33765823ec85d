"""Selector orders reaching guards on a real node (``custodes serve`` on loopback).

A lone ``Guard`` (its own stream) refuses once a selector order covering its agent
arrives (issued with ``custodes kill suspend --selector``), and a guard it does not
cover keeps acting; a ``FleetFeed`` (one stream for an
operator's agents) receives the order once and every covered agent's state refuses.
Waits are bounded and for the observable event (a refusal, a received push).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import entry_key_string
from custodes.registry.models import Selector
from custodes.sdk.bootstrap import Authorities, bootstrap, enrol_agent, register_principal
from custodes.sdk.fleet import FleetFeed
from custodes.sdk.guard import GuardState
from custodes.sdk.leases import Lease
from custodes.sdk.pushes import FleetPush
from tests.integration.nodes import GuardedAgent, close_all, gb_node, node_public_key
from tests.integration.procs import ADMIN_TOKEN, NodeProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

WAIT_S = 15.0  # a bound for what must happen, never a measurement


@contextlib.contextmanager
def gb(tmp_path: Path) -> Iterator[tuple[NodeProcess, Authorities]]:
    process = gb_node(tmp_path / "node", tmp_path / "serve.log")
    process.start()
    http = httpx.Client(base_url=process.url, timeout=10.0)
    try:
        yield process, bootstrap(process.url, ADMIN_TOKEN, "GB", client=http)
    finally:
        http.close()
        process.kill()


def _enrol(authorities: Authorities, slug: str, sector: str) -> tuple[str, EnvelopeSigner]:
    signer = EnvelopeSigner.generate()
    return enrol_agent(authorities, signer, slug, sector=sector), signer


def test_a_guard_refuses_when_a_selector_order_covering_it_arrives(tmp_path: Path) -> None:
    with gb(tmp_path) as (process, authorities):
        key = node_public_key(process.url)
        enrolled = [_enrol(authorities, f"a-{i}", s) for i, s in enumerate(("finance", "energy"))]
        agents = [
            GuardedAgent.start(process.url, key, a, s, tmp_path / f"spool-{a[-1]}")
            for a, s in enrolled
        ]
        try:
            for agent in agents:
                assert agent.guard.wait_for_lease(10.0)
                wait_until("the stream is open", lambda a=agent: a.guard.stream_connected, WAIT_S)
            covered, spared = agents
            done = _kill_by_cli(process.url, tmp_path, "sector=finance,jurisdiction=GB")
            assert done.returncode == 0, done.stderr
            assert "suspended 1 agent: order" in done.stdout
            wait_until("the covered guard refuses", lambda: not covered.allowed("GB"), WAIT_S)
            halted = covered.guard.halted()
            assert halted is not None
            assert halted.reason == "kill_order"
            assert spared.allowed("GB")
        finally:
            close_all(agents)


def _kill_by_cli(url: str, tmp_path: Path, selector: str) -> subprocess.CompletedProcess[str]:
    """``custodes kill suspend --selector`` as a regulator's desk with its own key file."""
    key = EnvelopeSigner.generate()
    with httpx.Client(base_url=url, timeout=10.0) as http:
        token = register_principal(
            http, ADMIN_TOKEN, "regulator:gb-desk", role="regulator", jurisdiction="GB", key=key
        )
    key_file = tmp_path / "desk.key"
    key_file.write_text(entry_key_string("regulator:gb-desk", key))
    command = ["kill", "suspend", "--selector", selector, "--reason", "model found vulnerable"]
    acting = ["--node", url, "--as", "regulator:gb-desk", "--token", token, "--key", str(key_file)]
    return subprocess.run(
        [sys.executable, "-m", "custodes", *command, *acting],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _leased(agent_id: str) -> GuardState:
    state = GuardState(agent_id)
    now = time.time()
    lease = Lease("l", agent_id, "k", frozenset({"GB"}), now - 1, now + 600, "node:gb")
    state.on_lease(lease)
    return state


def test_a_fleet_feed_applies_one_push_to_every_covered_agent(tmp_path: Path) -> None:
    with gb(tmp_path) as (process, authorities):
        ids = [_enrol(authorities, f"f-{i}", "finance" if i < 3 else "energy")[0] for i in range(5)]
        states = {agent_id: _leased(agent_id) for agent_id in ids}
        pushes: list[FleetPush] = []
        received = threading.Event()

        def applied(push: FleetPush, reached: list[str]) -> None:
            pushes.append(push)
            received.set()

        http = httpx.Client()
        feed = FleetFeed(
            process.url,
            node_public_key(process.url),
            "operator:acme",
            states,
            http=http,
            on_applied=applied,
        )
        stop = threading.Event()
        thread = threading.Thread(target=feed.follow_once, args=(stop,), daemon=True)
        thread.start()
        try:
            assert feed.connected.wait(WAIT_S)
            authorities.regulator.order(
                "suspend", None, "model found vulnerable", selector=Selector(sector="finance")
            )
            assert received.wait(WAIT_S)
            (push,) = pushes  # one countersigned push for the three agents
            assert push.agents == tuple(sorted(ids[:3]))
            with feed.lock:
                refused = {a for a, s in states.items() if s.refusal("GB", time.time())}
            assert refused == set(ids[:3])
        finally:
            stop.set()
            feed.interrupt()  # ends the blocked read
            thread.join(5.0)
            http.close()
