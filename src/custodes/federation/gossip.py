"""CheckpointGossip: members compare the checkpoints they have seen of every log.

Every few seconds the leading worker fetches ``/api/v1/federation/checkpoints`` from each
active party of the roster, keeps each note whose log signature verifies under the
origin's vkey from the roster (a forged note proves nothing), and compares it with its
own view of that origin (docs/design/0027):

- same size, different root: evidence at once (case "same-size");
- different sizes: it reads the origin's tiles at the larger size; if they give the
  larger checkpoint's root, the tree they give at the smaller size either is the smaller
  checkpoint's root (consistent) or is evidence (case "not-a-prefix", with the proof);
- otherwise it compares both with the origin's current checkpoint the same way, and if
  nothing can be proved it keeps a *suspicion* (not evidence) and asks again next round.

Evidence is logged once per pair, raises an alert, and makes the witness refuse the
origin (``SplitViews``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from custodes.errors import CustodesError
from custodes.federation.evidence import (
    Evidence,
    SeenCheckpoint,
    open_seen,
    pair_key,
    prefix_evidence,
    same_size_evidence,
)
from custodes.federation.roster import Party
from custodes.federation.views import SplitViews
from custodes.ledger.errors import VerificationError
from custodes.ledger.merkle import NodeReader, consistency_proof, subtree_root
from custodes.ledger.note import parse_vkey
from custodes.ledger.tiles import (
    TILE_WIDTH,
    hashes_from_tile,
    perfect_node_from_tiles,
    tile_path,
    tile_width,
)
from custodes.node import Node

__all__ = ["CheckpointGossip", "compare", "tile_reader"]

log = logging.getLogger("custodes.federation.gossip")

Outcome = Evidence | bool  # evidence; True: consistent; False: nothing proved either way


def tile_reader(get: Callable[[str], bytes], size: int) -> NodeReader:
    """Tree nodes of the origin's tree at ``size``, read from its tiles (cached per tile);
    ``get(path)`` fetches ``<log prefix>/<path>`` or raises a ``CustodesError``."""
    tiles: dict[tuple[int, int], list[bytes]] = {}

    def read(tile_level: int, start: int, end: int) -> list[bytes]:
        index = start // TILE_WIDTH
        if (tile_level, index) not in tiles:
            width = tile_width(tile_level, index, size)
            data = get(tile_path(tile_level, index, width))
            tiles[(tile_level, index)] = hashes_from_tile(data)
        base = index * TILE_WIDTH
        return tiles[(tile_level, index)][start - base : end - base]

    return lambda level, index: perfect_node_from_tiles(level, index, read)


def compare(
    vkey: str, a: SeenCheckpoint, b: SeenCheckpoint, reader_for: Callable[[int], NodeReader]
) -> Outcome:
    """Whether ``a`` and ``b`` (same origin, both verified) are consistent, or evidence."""
    if a.size == b.size:
        return True if a.root == b.root else same_size_evidence(vkey, a, b)
    small, large = sorted((a, b), key=lambda s: s.size)
    try:
        reader = reader_for(large.size)
        if subtree_root(reader, 0, large.size) != large.root:
            return False  # the origin's tiles are not the larger tree: prove nothing here
        prefix = subtree_root(reader, 0, small.size) if small.size else small.root
        if prefix == small.root:
            return True
        proof = consistency_proof(small.size, large.size, reader)
    except CustodesError as exc:
        log.info("cannot read %s's tree at size %d: %s", large.origin, large.size, exc.message)
        return False
    return prefix_evidence(vkey, small, large, prefix, proof)


class CheckpointGossip:
    def __init__(self, node: Node, views: SplitViews, *, client: httpx.Client | None = None):
        self._node = node
        self._views = views
        self._client = client or httpx.Client(timeout=node.settings.witness_timeout)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint-gossip", daemon=True)
        self._consistent: set[str] = set()
        self.suspicions: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        self._node.federation.on_change(lambda _roster: self._wake.set())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self._node.settings.gossip_interval)
            self._wake.clear()
            if self._stop.is_set() or not self._node.is_leader:
                continue
            try:
                self.round()
            except Exception:  # a database or peer error: the next round tries again
                log.exception("checkpoint gossip round failed; retrying next interval")

    def round(self) -> None:
        """Record this log's own view, then compare with every peer's views once."""
        self._observe_own()
        logs = {p.origin: p for p in self._roster_parties()}
        for peer in self._node.federation.peers():
            for origin, note in self._fetch(peer).items():
                if origin in logs:
                    self._compare_note(logs[origin], note, peer.code)

    def _roster_parties(self) -> list[Party]:
        roster = self._node.federation.roster
        return list(roster.body.parties) if roster is not None else []

    def _observe_own(self) -> None:
        note = self._node.served_checkpoint()
        if note is not None:
            seen = open_seen(note, self._node.log_signer.verifier())
            self._views.observe(seen.origin, seen.size, seen.root, note)

    def _fetch(self, peer: Party) -> dict[str, bytes]:
        url = f"{peer.url}/api/v1/federation/checkpoints"
        try:
            response = self._client.get(url)
            response.raise_for_status()
            items = response.json()["checkpoints"]
            return {str(i["origin"]): str(i["note"]).encode() for i in items}
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("cannot read the checkpoints %s has seen: %s", peer.code, exc)
            return {}

    def _compare_note(self, party: Party, note: bytes, peer: str) -> None:
        try:
            theirs = open_seen(note, parse_vkey(party.log_vkey))
        except CustodesError as exc:  # a forged or garbled note proves nothing
            log.warning("%s's view of %s does not verify: %s", peer, party.origin, exc.message)
            return
        ours_note = self._views.seen().get(party.origin)
        if ours_note is None or self._views.open_alert(party.origin) is not None:
            return
        ours = open_seen(ours_note, parse_vkey(party.log_vkey))
        key = pair_key(ours, theirs)
        if ours.body == theirs.body or key in self._consistent or self._views.known(key):
            return
        self._settle(party, ours, theirs, key, peer)

    def _settle(
        self, party: Party, ours: SeenCheckpoint, theirs: SeenCheckpoint, key: str, peer: str
    ) -> None:
        outcome = self._judge(party.log_vkey, ours, theirs, self._origin(party))
        if outcome is True:
            self._consistent.add(key)
            self.suspicions.pop(key, None)
        elif outcome is False:
            self._suspect(key, party.origin, ours, theirs, peer)
        else:
            self.suspicions.pop(key, None)
            self._alert(outcome, peer)

    def _origin(self, party: Party) -> Callable[[str], bytes]:
        """Reads the origin's tlog-tiles log (checkpoint, tiles) with this gossip's client."""

        def get(path: str) -> bytes:
            url = f"{party.url}/log/{path}"
            try:
                response = self._client.get(url)
            except httpx.HTTPError as exc:
                raise VerificationError(f"cannot fetch {url}: {exc}", code="fetch_failed") from exc
            if response.status_code != 200:
                raise VerificationError(
                    f"{url} answered HTTP {response.status_code}", code="fetch_failed"
                )
            return response.content

        return get

    def _judge(
        self, vkey: str, ours: SeenCheckpoint, theirs: SeenCheckpoint, get: Callable[[str], bytes]
    ) -> Outcome:
        def reader_for(size: int) -> NodeReader:
            return tile_reader(get, size)

        outcome = compare(vkey, ours, theirs, reader_for)
        if outcome is not False:
            return outcome
        try:  # the origin's own tree may connect, or betray, either view
            current = open_seen(get("checkpoint"), parse_vkey(vkey))
        except CustodesError:
            return False
        for seen in (ours, theirs):
            judged = compare(vkey, seen, current, reader_for)
            if isinstance(judged, Evidence):
                return judged
        return False

    def _suspect(
        self, key: str, origin: str, ours: SeenCheckpoint, theirs: SeenCheckpoint, peer: str
    ) -> None:
        if key not in self.suspicions:
            log.warning(
                "suspected split view of %s: we hold size %d, %s holds size %d, and no proof "
                "connects them yet",
                origin,
                ours.size,
                peer,
                theirs.size,
            )
        self.suspicions[key] = {
            "origin": origin,
            "ours": ours.note.decode(),
            "theirs": theirs.note.decode(),
            "peer": peer,
            "checked_at": time.time(),
        }

    def _alert(self, evidence: Evidence, peer: str) -> None:
        alert = self._views.report(evidence)
        if alert is not None:
            log.error(
                "SPLIT VIEW: the log %s signed two inconsistent checkpoints (sizes %d and %d; "
                "seen through %s); evidence logged at entry %d, alert %d; this witness no "
                "longer cosigns %s",
                evidence.origin,
                evidence.first.size,
                evidence.second.size,
                peer,
                alert.entry_index,
                alert.id,
                evidence.origin,
            )
