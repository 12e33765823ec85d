"""Two in-process nodes, FR sending and GB at home: a sender that crashed after the home
logged its order, but before it recorded the answer, resends and the order stays one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from custodes.api import create_app
from custodes.federation.forwarding import OrderForwarder
from custodes.killswitch.outbox import OrderOutbox, order_outbox
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.store.db import write_tx
from tests.databases import node_settings
from tests.enrol import enrol, principal
from tests.federation.forwarding_support import Parties, found, order_envelope

AGENT_KEY = EnvelopeSigner.from_seed(bytes(range(32)))
PARTIES = {"GB": "member", "FR": "member"}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[TestClient, Parties]]:
    gb_dir = tmp_path / "gb"
    alliance = found(gb_dir, "GB", gb_dir / "node", "test.custodes.example/log", PARTIES)
    settings = node_settings(gb_dir, f"sqlite:///{gb_dir / 'gb.db'}").model_copy(
        update={"jurisdiction": "GB", "roster_file": alliance.roster_file}
    )
    with TestClient(create_app(settings)) as client:
        yield client, alliance


@pytest.fixture
def sender(tmp_path: Path, home: tuple[TestClient, Parties]) -> Iterator[Node]:
    """The FR node, its data directory holding the FR keys the roster names."""
    _, alliance = home
    fr_dir = tmp_path / "gb" / "party-fr"
    settings = node_settings(tmp_path / "fr", f"sqlite:///{tmp_path / 'fr.db'}").model_copy(
        update={
            "jurisdiction": "FR",
            "roster_file": alliance.roster_file,
            "data_dir": fr_dir,
            "origin": "fr.alliance.test/log",
        }
    )
    node = Node(settings)
    node.start()
    try:
        yield node
    finally:
        node.close()


def test_a_resend_after_a_crash_settles_on_the_homes_stored_answer(
    home: tuple[TestClient, Parties], sender: Node
) -> None:
    gb, alliance = home
    gb_node: Node = gb.app.state.node  # type: ignore[attr-defined]
    agent = enrol(gb_node, AGENT_KEY, operating=("FR",))
    fr_key = alliance.keys["FR"].regulator  # the key the roster vouches for under FR
    regulator = principal(sender, "regulator:fr", "regulator", fr_key)
    order = order_envelope(fr_key, "regulator:fr", agent).to_json()
    outbox = OrderOutbox(sender.engine)
    forwarder = OrderForwarder(
        sender.federation, sender.registry, outbox, sender.entry_signer, http=gb
    )
    row = forwarder.forward(order, regulator)
    assert row.state == "delivered"
    size = gb_node.store.sequenced_size()
    with write_tx(sender.engine) as conn:  # the crash: the answer was never recorded
        conn.execute(
            update(order_outbox)
            .where(order_outbox.c.message_id == row.message_id)
            .values(state="queued", next_attempt=0.0, answer=None, answer_status=None)
        )
    assert forwarder.relay_once() == 1
    settled = outbox.get(row.message_id)
    assert (settled.state, settled.answer_status) == ("delivered", 200)
    assert settled.answer is not None
    assert settled.answer["replayed"] is True
    assert settled.answer["index"] == row.answer["index"]  # type: ignore[index]
    assert gb_node.store.sequenced_size() == size
    orders = gb.get("/api/v1/kill-orders", params={"agent_id": agent}).json()
    assert len(orders) == 1
