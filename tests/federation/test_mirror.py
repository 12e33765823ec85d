"""A peer's mirror: verified from its tiles, replayed into a registry, halted on a fork."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.client import new_order_id
from custodes.config import Settings
from custodes.federation.mirror import MirrorDiverged, PeerMirror
from custodes.federation.party import node_party
from custodes.federation.roster import Party
from custodes.ledger.checkpoint import parse_checkpoint
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.merkle import verify_inclusion
from custodes.ledger.note import parse_note
from custodes.registry.models import KillOrder
from custodes.registry.service import ORDER_TYPE
from tests.api.support import AGENT, enrol_agent, node_of
from tests.enrol import REGULATOR_KEY, principal

KEY = EnvelopeSigner.from_seed(bytes(range(32)))


class _Clock:
    """Seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _party(settings: Settings) -> Party:
    return node_party(
        settings.data_dir,
        code="ZZ",
        name="Zedland",
        status="member",
        urls=["http://127.0.0.1:1"],
        origin=settings.origin,
    )


def _fetcher(client: TestClient) -> Callable[[Sequence[str]], list[bytes]]:
    def fetch_many(paths: Sequence[str]) -> list[bytes]:
        return [client.get(f"/log/{p}").content for p in paths]

    return fetch_many


def _checkpoint(client: TestClient) -> bytes:
    node_of(client).log.integrate()
    return client.get("/log/checkpoint").content


def _suspend_in(client: TestClient, territory: str) -> None:
    """The home regulator suspends AGENT in ``territory`` (an order entry in its log)."""
    node = node_of(client)
    regulator = principal(node, "regulator:zz", "regulator", REGULATOR_KEY)
    order = KillOrder(
        op="suspend",
        order_id=new_order_id(),
        agent_id=AGENT,
        scope="territorial",
        territory=territory,
        reason="unsafe trades",
        actor=regulator.id,
        at=datetime.now(UTC),
    )
    payload = order.model_dump_json(exclude_none=True).encode()
    node.registry.issue_order(
        sign_envelope(ORDER_TYPE, payload, [REGULATOR_KEY]).to_json(), regulator
    )


@pytest.fixture
def home(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        enrol_agent(client, KEY)
        yield client


def test_the_mirror_answers_as_the_home_does_with_a_proof_at_its_checkpoint(
    home: TestClient, settings: Settings, tmp_path: Path
) -> None:
    clock = _Clock()
    mirror = PeerMirror(_party(settings), tmp_path / "mirror" / "ZZ.db", clock)
    try:
        note = _checkpoint(home)
        state = mirror.advance(note, _fetcher(home))
        checkpoint = parse_checkpoint(parse_note(note).text)
        assert (state.size, state.note, state.age(clock.now)) == (checkpoint.size, note, 0.0)
        ours = mirror.queries.agent(AGENT, reader=None)
        assert ours == node_of(home).queries.agent(AGENT, reader=None)
        index = ours["entry_index"]
        proof = mirror.inclusion(index, state.size)
        verify_inclusion(mirror.leaf(index), index, state.size, proof, checkpoint.root_hash)

        _suspend_in(home, "FR")
        clock.now += 3
        state = mirror.advance(_checkpoint(home), _fetcher(home))
        assert state.size > checkpoint.size
        assert state.age(clock.now) == 0.0
        status = mirror.queries.agent(AGENT, reader=None)
        assert (status["status"], status["suspended_in"]) == ("active", ["FR"])
    finally:
        mirror.close()


def test_a_restarted_mirror_carries_on_from_what_it_verified(
    home: TestClient, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "mirror" / "ZZ.db"
    first = PeerMirror(_party(settings), path)
    size = first.advance(_checkpoint(home), _fetcher(home)).size
    first.close()
    _suspend_in(home, "DE")
    again = PeerMirror(_party(settings), path)
    try:
        assert again.state.size == size
        state = again.advance(_checkpoint(home), _fetcher(home))
        assert state.size > size
        assert again.queries.agent(AGENT, reader=None)["suspended_in"] == ["DE"]
    finally:
        again.close()


def _twin(settings: Settings, tmp_path: Path) -> Settings:
    """A node with the home's log key and origin but a history of its own: a fork."""
    data_dir = tmp_path / "twin"
    data_dir.mkdir()
    shutil.copy(settings.log_key_file, data_dir / "log.key")
    return settings.model_copy(
        update={"data_dir": data_dir, "database_url": f"sqlite:///{data_dir / 'c.db'}"}
    )


@pytest.mark.parametrize(
    "case",
    [
        pytest.param((0, 1, "does not extend"), id="twin-grows-on-another-history"),
        pytest.param((0, 0, "forked at one size"), id="same-size-other-root"),
        pytest.param((1, 0, "shrank"), id="twin-is-shorter"),
    ],
)
def test_a_log_that_forks_halts_its_mirror_which_keeps_what_it_had(
    home: TestClient,
    settings: Settings,
    tmp_path: Path,
    case: tuple[int, int, str],
) -> None:
    """(orders at home before mirroring, orders at the twin, what the alarm says)"""
    home_orders, twin_orders, why = case
    mirror = PeerMirror(_party(settings), tmp_path / "mirror" / "ZZ.db")
    try:
        for _ in range(home_orders):
            _suspend_in(home, "FR")
        before = mirror.advance(_checkpoint(home), _fetcher(home))
        with TestClient(create_app(_twin(settings, tmp_path))) as twin:
            enrol_agent(twin, KEY)
            for _ in range(twin_orders):
                _suspend_in(twin, "FR")
            with pytest.raises(MirrorDiverged) as raised:
                mirror.advance(_checkpoint(twin), _fetcher(twin))
        assert why in raised.value.message
        assert raised.value.detail["mirrored_note"] == (before.note or b"").decode()
        assert mirror.state.alarm is not None
        assert mirror.state.size == before.size
        _suspend_in(home, "DE")
        after = mirror.advance(_checkpoint(home), _fetcher(home))  # halted: no more following
        assert (after.size, after.alarm) == (before.size, mirror.state.alarm)
        assert "DE" not in mirror.queries.agent(AGENT, reader=None)["suspended_in"]
    finally:
        mirror.close()
