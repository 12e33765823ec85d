"""One gossip round against scripted peers: what is proved, ignored or only suspected.

The node under test is real (its views, log and alerts, on SQLite and PostgreSQL); the
peers and the accused log are outside it, so they are scripted with ``httpx.MockTransport``:
each serves its views of the accused log, and the log serves its checkpoint and tiles.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from custodes.federation.evidence import open_seen
from custodes.federation.gossip import CheckpointGossip
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import found_roster
from custodes.federation.views import OriginMisbehaved
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.keys import load_or_create_note_signer
from custodes.ledger.merkle import leaf_hash, root_of
from custodes.ledger.note import NoteSigner
from custodes.ledger.tiles import parse_tile_path, tile_from_hashes
from custodes.node import Node

ORIGIN = "gb.alliance.test/log"
REAL = [leaf_hash(f"real {i}".encode()) for i in range(6)]


class Alliance:
    """The accused log (GB, serving ``REAL``) and the peer whose views are scripted."""

    def __init__(self, root: Path) -> None:
        self.log_key: NoteSigner = load_or_create_note_signer(root / "gb" / "log.key", ORIGIN)
        self.peer_views: list[bytes] = []
        parties = [
            node_party(
                root / code.lower(),
                code=code,
                name=code,
                status="member",
                urls=[f"http://{code.lower()}.test"],
                origin=f"{code.lower()}.alliance.test/log",
            )
            for code in ("GB", "FR")
        ]
        votes = [roster_signer(root / p.code.lower()) for p in parties]
        expires = datetime.now(UTC) + timedelta(days=1)
        self.roster = found_roster("test", parties, votes, expires=expires)

    def note(self, leaves: Sequence[bytes], key: NoteSigner | None = None) -> bytes:
        checkpoint = Checkpoint(ORIGIN, len(leaves), root_of(leaves))
        return sign_checkpoint(checkpoint, key or self.log_key)

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/federation/checkpoints":
            views = self.peer_views if request.url.host == "fr.test" else []
            return httpx.Response(
                200, json={"checkpoints": [{"origin": ORIGIN, "note": v.decode()} for v in views]}
            )
        if request.url.host == "gb.test" and path == "/log/checkpoint":
            return httpx.Response(200, content=self.note(REAL))
        if request.url.host == "gb.test" and path.startswith("/log/tile/"):
            ref = parse_tile_path(path.removeprefix("/log/"))
            start = ref.index * 256
            if ref.level != 0 or start + ref.width > len(REAL):
                return httpx.Response(404)
            return httpx.Response(200, content=tile_from_hashes(REAL[start : start + ref.width]))
        return httpx.Response(404)


@pytest.fixture
def alliance(node: Node, tmp_path: Path) -> Alliance:
    scripted = Alliance(tmp_path / "parties")
    node.federation.install(scripted.roster)
    return scripted


@pytest.fixture
def gossip(node: Node, alliance: Alliance) -> Iterator[CheckpointGossip]:
    client = httpx.Client(transport=httpx.MockTransport(alliance.answer))
    started = CheckpointGossip(node, node.split_views, client=client)
    try:
        yield started
    finally:
        started.stop()


def _hold(node: Node, alliance: Alliance, leaves: Sequence[bytes]) -> None:
    """This node's witness view of GB: ``leaves``' checkpoint."""
    seen = open_seen(alliance.note(leaves), alliance.log_key.verifier())
    node.split_views.observe(ORIGIN, seen.size, seen.root, seen.note)


def _cases(node: Node) -> list[object]:
    return [a.evidence["case"] for a in node.split_views.alerts() if a.origin == ORIGIN]


def test_a_peer_view_of_the_same_size_with_another_root_is_logged_once(
    node: Node, alliance: Alliance, gossip: CheckpointGossip
) -> None:
    _hold(node, alliance, REAL[:5])
    alliance.peer_views = [alliance.note([*REAL[:4], leaf_hash(b"other")])]
    gossip.round()
    gossip.round()
    assert _cases(node) == ["same-size"]
    with pytest.raises(OriginMisbehaved):
        node.split_views.refusal(ORIGIN)
    node.split_views.refusal("fr.alliance.test/log")  # other logs are still cosigned


def test_a_smaller_tree_that_is_not_a_prefix_of_the_log_is_proved(
    node: Node, alliance: Alliance, gossip: CheckpointGossip
) -> None:
    _hold(node, alliance, [*REAL[:3], leaf_hash(b"rewritten")])
    alliance.peer_views = [alliance.note(REAL)]
    gossip.round()
    assert _cases(node) == ["not-a-prefix"]


def test_a_lagging_view_of_an_honest_log_is_consistent(
    node: Node, alliance: Alliance, gossip: CheckpointGossip
) -> None:
    _hold(node, alliance, REAL[:3])
    alliance.peer_views = [alliance.note(REAL)]
    gossip.round()
    assert _cases(node) == []
    assert gossip.suspicions == {}


def test_a_view_that_does_not_verify_proves_nothing(
    node: Node, alliance: Alliance, gossip: CheckpointGossip
) -> None:
    _hold(node, alliance, REAL[:5])
    impostor = NoteSigner.generate(ORIGIN)  # the log's name, another key
    alliance.peer_views = [alliance.note([*REAL[:4], leaf_hash(b"other")], impostor)]
    gossip.round()
    assert _cases(node) == []
    assert gossip.suspicions == {}


def test_what_no_proof_connects_stays_a_suspicion(
    node: Node, alliance: Alliance, gossip: CheckpointGossip
) -> None:
    _hold(node, alliance, REAL[:3])
    # A larger tree the log does not serve (no tiles at size 8), consistent with ours.
    alliance.peer_views = [alliance.note([*REAL, leaf_hash(b"7"), leaf_hash(b"8")])]
    gossip.round()
    assert _cases(node) == []
    assert [s["origin"] for s in gossip.suspicions.values()] == [ORIGIN]
