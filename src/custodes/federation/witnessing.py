"""WitnessRequester: asks the configured witnesses to cosign this node's checkpoints.

For each witness it remembers the size the witness last cosigned (``witness_peers``),
sends ``add-checkpoint`` with a consistency proof from that size, learns the witness's
real size from a 409 and retries once, and stores every cosignature that verifies
against the witness's configured key. Only the newest checkpoint is sent: a witness
that lags skips intermediate sizes, as tlog-witness allows.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Sequence

import httpx

from custodes.config import WitnessPeer
from custodes.errors import CustodesError
from custodes.ledger.cosignature import verify_cosignature
from custodes.ledger.errors import NoteError
from custodes.ledger.note import NoteSignature, NoteVerifier, parse_note, parse_vkey
from custodes.ledger.store import StoredCheckpoint
from custodes.ledger.witness import format_add_checkpoint
from custodes.node import Node

__all__ = ["WitnessRequester"]

log = logging.getLogger("custodes.federation")


class WitnessRequester:
    def __init__(
        self, node: Node, peers: Sequence[WitnessPeer], *, client: httpx.Client | None = None
    ) -> None:
        self._node = node
        self._static = [(p.url.rstrip("/"), parse_vkey(p.vkey)) for p in peers]
        self._client = client or httpx.Client(timeout=node.settings.witness_timeout)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="witnessing", daemon=True)

    def peers(self) -> list[tuple[str, NoteVerifier]]:
        """Whom to ask now: CUSTODES_WITNESSES, then every other active party's witness
        on the roster in force (read each round: a new roster applies without restart),
        unless CUSTODES_ASK_ROSTER_WITNESSES is off (a node whose checkpoints reach the
        witnesses by other means, or none: it then serves them uncosigned)."""
        peers = list(self._static)
        if not self._node.settings.ask_roster_witnesses:
            return peers
        seen = {(v.name, v.key_id) for _, v in peers}
        for party in self._node.federation.peers():
            verifier = parse_vkey(party.witness_vkey)
            if (verifier.name, verifier.key_id) not in seen:
                seen.add((verifier.name, verifier.key_id))
                peers.append((party.url, verifier))
        return peers

    def start(self) -> None:
        if self._static or self._node.federation.roster is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def _run(self) -> None:
        interval = self._node.settings.checkpoint_interval
        done = -1  # the newest size every witness has cosigned
        while not self._stop.is_set():
            newest = self._node.store.checkpoint()
            # A witness that was down is asked again every interval, not only when the
            # log grows: a quiet log must still end up cosigned.
            if (
                self._node.is_leader  # one worker asks the witnesses (docs/design/0012)
                and newest is not None
                and newest.size != done
                and self.request_all(newest) == len(self.peers()) + self._self_count()
            ):
                done = newest.size
            with self._node.log.checkpointed:
                self._node.log.checkpointed.wait(timeout=interval)

    def request_all(self, checkpoint: StoredCheckpoint) -> int:
        """Ask every witness that has not yet cosigned ``checkpoint``; return how many have."""
        done = self._cosign_self(checkpoint)
        for url, verifier in self.peers():
            if self._node.store.has_cosignature(checkpoint.size, verifier.name):
                done += 1
                continue
            try:
                done += self._request(url, verifier, checkpoint)
            except (httpx.HTTPError, CustodesError) as exc:
                self._node.metrics.witness_failed(verifier.name)
                log.warning(
                    "witness %s did not cosign size %d: %s", verifier.name, checkpoint.size, exc
                )
        return done

    def _self_count(self) -> int:
        return 1 if self._node.federation.roster is not None else 0

    def _cosign_self(self, checkpoint: StoredCheckpoint) -> int:
        """In an alliance, this node's own witness cosigns its log too (a log owner vouches
        for its own log's consistency, and counts towards finality like any member)."""
        if not self._self_count():
            return 0
        verifier = self._node.cosigner.verifier()
        if self._node.store.has_cosignature(checkpoint.size, verifier.name):
            return 1
        state = self._node.witness.state(self._node.settings.origin)
        old = 0 if state is None else state[0]
        if old > checkpoint.size:
            return 0  # another worker cosigned a newer checkpoint already
        proof: list[bytes] = []
        if 0 < old < checkpoint.size:
            proof = self._node.log.consistency(old, checkpoint.size)["proof"]
        try:
            body = self._node.witness.add_checkpoint(
                format_add_checkpoint(old, proof, checkpoint.note)
            )
        except CustodesError as exc:
            log.warning("our own witness did not cosign size %d: %s", checkpoint.size, exc)
            return 0
        return self._store(verifier, checkpoint, body)

    def _post(self, url: str, old: int, checkpoint: StoredCheckpoint) -> httpx.Response:
        proof: list[bytes] = []
        if 0 < old < checkpoint.size:
            proof = self._node.log.consistency(old, checkpoint.size)["proof"]
        body = format_add_checkpoint(old, proof, checkpoint.note)
        return self._client.post(f"{url}/witness/add-checkpoint", content=body)

    def _request(self, url: str, verifier: NoteVerifier, checkpoint: StoredCheckpoint) -> int:
        old = self._node.store.peer_size(verifier.name)
        if old > checkpoint.size:
            old = 0  # our record is ahead of this checkpoint: ask the witness its size
        response = self._post(url, old, checkpoint)
        if response.status_code == 409 and response.headers.get("content-type", "").startswith(
            "text/x.tlog.size"
        ):
            old = _size(verifier.name, response.text)
            self._node.store.set_peer_size(verifier.name, old)
            if old > checkpoint.size:
                self._check_ahead(verifier.name, old)
                return 0
            response = self._post(url, old, checkpoint)
        if response.status_code == 422:
            raise self._node.alarm.trip(
                f"witness {verifier.name} refused our checkpoint as inconsistent with what it "
                "cosigned before (a fork of our log)",
                {"witness": verifier.name, "size": checkpoint.size, "answer": response.text[:500]},
            )
        response.raise_for_status()
        return self._store(verifier, checkpoint, response.text)

    def _check_ahead(self, witness: str, size: int) -> None:
        """A witness holds more of our log than we do: we were rolled back, or forked."""
        ours, _ = self._node.store.tree_size()
        if size > ours:  # not just another worker's newer checkpoint
            raise self._node.alarm.trip(
                f"witness {witness} has cosigned size {size} of our log, but we hold only "
                f"{ours}: this node's database was rolled back or its log forked",
                {"witness": witness, "witness_size": size, "size": ours},
            )

    def _store(self, verifier: NoteVerifier, checkpoint: StoredCheckpoint, body: str) -> int:
        text = parse_note(checkpoint.note).text
        stored = 0
        for line in body.splitlines():
            name, _, blob = line.removeprefix("— ").partition(" ")
            if name != verifier.name:
                continue
            signature = _note_signature(name, blob)
            timestamp = verify_cosignature(text, signature, verifier)
            self._node.store.add_cosignature(checkpoint.size, name, line + "\n", timestamp)
            stored += 1
        if stored:
            self._node.store.set_peer_size(verifier.name, checkpoint.size)
        return min(stored, 1)


def _size(witness: str, body: str) -> int:
    text = body.strip()
    if not text.isdigit() or len(text) > 20:
        raise NoteError(f"witness {witness} answered 409 without a decimal size")
    return int(text)


def _note_signature(name: str, blob: str) -> NoteSignature:
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"witness {name} answered a cosignature that is not base64") from exc
    return NoteSignature(name=name, key_id=raw[:4], signature=raw[4:])
