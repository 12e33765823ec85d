"""Helpers for the SDK tests: an agent, a fake home node, and waiting for threads."""

from __future__ import annotations

import time
from collections.abc import Callable

from custodes.demo.fakes import FakeClock, FakeNode
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.guard import Guard
from custodes.sdk.recorder import DecisionRecorder

__all__ = ["AGENT", "eventually", "make_guard", "make_node"]

AGENT = "urn:custodes:gb:agent:trader"


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (real time) for a background thread to make ``condition`` true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def make_node(clock: FakeClock, signer: EnvelopeSigner, ttl: float = 60.0) -> FakeNode:
    node = FakeNode(clock, lease_ttl=ttl, heartbeat=0.02)
    node.register_agent(AGENT, signer.public_key, ["GB", "FR"])
    return node


def make_guard(
    node: FakeNode,
    clock: FakeClock,
    signer: EnvelopeSigner,
    *,
    safe_state: Callable[[], None] = lambda: None,
    recorder: DecisionRecorder | None = None,
    on_territorial_halt: Callable[[str], None] | None = None,
    on_resume: Callable[[], None] | None = None,
) -> Guard:
    return Guard(
        AGENT,
        signer,
        node.url,
        node.public_key,
        safe_state=safe_state,
        recorder=recorder,
        clock=clock,
        http=node.client(),
        on_territorial_halt=on_territorial_halt,
        on_resume=on_resume,
        retry_initial=0.02,
        retry_max=0.1,
        poll=0.005,
    )
