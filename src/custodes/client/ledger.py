"""The ledger side of the API: the node, its signers, appends, entries, proofs, the log."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from custodes.client.core import Auth, Pins, _Core
from custodes.client.models import Decision, NodeInfo
from custodes.errors import BadRequest, ConfigError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.checkpoint import Checkpoint, open_checkpoint
from custodes.ledger.commitments import OpenedEntry
from custodes.ledger.dsse import Envelope
from custodes.ledger.errors import VerificationError
from custodes.ledger.note import parse_vkey
from custodes.ledger.payloads import DECISION_TYPE, ERASURE_TYPE, ErasureRecord
from custodes.ledger.tiles import TILE_WIDTH, decode_entry_bundle, entries_path

__all__ = ["LedgerApi"]


class LedgerApi(_Core):
    def node_info(self) -> NodeInfo:
        """``GET /api/v1/node``; on a pinned client, refused if the node's keys changed."""
        info = NodeInfo.parse(self._json("GET", "/api/v1/node"))
        if self.pins is not None:
            _check_pins(self.pins, info)
        return info

    def pin(self, *, log_vkey: str | None = None) -> Pins:
        """Fetch the node's keys and pin them (checked against ``log_vkey`` when given)."""
        info = self.node_info()
        if log_vkey is not None and info.log_vkey != log_vkey:
            raise VerificationError(
                f"the node at {self.url} signs its log with another key than the one given",
                detail={"expected": log_vkey, "served": info.log_vkey},
            )
        self.pins = Pins(info.log_vkey, info.witness_vkey, info.node_entry_public_key)
        return self.pins

    def signers(self) -> list[dict[str, Any]]:
        """``GET /api/v1/signers``: the keys allowed to sign entries."""
        found: list[dict[str, Any]] = self._json("GET", "/api/v1/signers")
        return found

    def register_signer(self, name: str, public_key: bytes) -> dict[str, Any]:
        """``POST /api/v1/admin/signers`` with the admin token."""
        body = {"name": name, "public_key": base64.b64encode(public_key).decode()}
        answer: dict[str, Any] = self._json(
            "POST", "/api/v1/admin/signers", content=orjson.dumps(body), auth=Auth.ADMIN
        )
        return answer

    def append(self, envelopes: Sequence[Envelope | OpenedEntry]) -> list[int]:
        """Append entries in one batch (envelopes, or committed decisions with their
        openings, as ``sign_committed_decision`` makes); return their durable indices."""
        body = canonical_dumps({"entries": [e.to_json() for e in envelopes]})
        indices: list[int] = self._json("POST", "/api/v1/entries", content=body)["indices"]
        return indices

    def decision(self, index: int) -> dict[str, Any]:
        """``GET /api/v1/decisions/{index}``: the decision with its proof; ``clear`` (salt
        and record) where this client's token entitles it, ``erased`` once erased."""
        answer: dict[str, Any] = self._json("GET", f"/api/v1/decisions/{index}")
        return answer

    def decision_clear(self, index: int) -> dict[str, Any]:
        """``GET /api/v1/decisions/{index}/clear``: the clear record (403 unless entitled)."""
        answer: dict[str, Any] = self._json(
            "GET", f"/api/v1/decisions/{index}/clear", auth=Auth.PRINCIPAL
        )
        return answer

    def erase_decision(self, index: int, commitment: str, legal_basis: str) -> dict[str, Any]:
        """Erase decision ``index``'s clear text (the home regulator, on a legal request):
        ``{"index", "erased_index", "by"}``."""
        erasure = ErasureRecord(
            index=index, commitment=commitment, legal_basis=legal_basis, actor=self._actor()
        )
        return self._submit(f"/api/v1/decisions/{index}/erasure", ERASURE_TYPE, erasure)

    def entry(self, index: int) -> dict[str, Any]:
        """``GET /api/v1/entries/{index}``: ``{"index", "entry", "leaf_hash"}``."""
        answer: dict[str, Any] = self._json("GET", f"/api/v1/entries/{index}")
        return answer

    def inclusion(self, index: int, tree_size: int | None = None) -> dict[str, Any]:
        """``GET /api/v1/proofs/inclusion``: the audit path of ``index`` at ``tree_size``."""
        params = {"index": index, "tree_size": tree_size}
        answer: dict[str, Any] = self._json("GET", "/api/v1/proofs/inclusion", params=params)
        return answer

    def consistency(self, first: int, second: int | None = None) -> dict[str, Any]:
        """``GET /api/v1/proofs/consistency`` between two tree sizes."""
        params = {"first": first, "second": second}
        answer: dict[str, Any] = self._json("GET", "/api/v1/proofs/consistency", params=params)
        return answer

    def checkpoint_note(self) -> bytes:
        """The signed checkpoint as served (``/log/checkpoint``), not yet verified."""
        return self._send("GET", "/log/checkpoint").content

    def checkpoint(self, log_vkey: str | None = None) -> Checkpoint:
        """The node's checkpoint, verified with ``log_vkey`` or else the pinned log key."""
        if log_vkey is not None:
            verifier = parse_vkey(log_vkey)
        elif self.pins is not None:
            verifier = self.pins.log_verifier
        else:
            raise ConfigError("pass the log's vkey, or pin the node's keys (Client.pinned)")
        return open_checkpoint(self.checkpoint_note(), [verifier])[0]

    def tile(self, path: str) -> bytes:
        """A tlog-tiles resource under ``/log/`` (a tile or an entry bundle)."""
        return self._send("GET", f"/log/{path}").content

    def decisions_between(self, start: int, end: int) -> Iterator[Decision]:
        """Decisions logged at indices ``[start, end)``, read from the entry bundles."""
        size = int(self.checkpoint_note().split(b"\n", 2)[1])
        if end > size:
            raise BadRequest(f"the log has {size} integrated entries; {end} is past its end")
        for tile in range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1):
            width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
            bundle = decode_entry_bundle(self.tile(entries_path(tile, width)))
            for offset, data in enumerate(bundle):
                index = tile * TILE_WIDTH + offset
                if start <= index < end and (decision := _decision(index, data)) is not None:
                    yield decision


def _check_pins(pins: Pins, info: NodeInfo) -> None:
    served = (info.log_vkey, info.witness_vkey, info.node_entry_public_key)
    if served != (pins.log_vkey, pins.witness_vkey, pins.node_entry_public_key):
        raise VerificationError(
            "the node now presents other keys than the ones pinned; refusing its answers",
            detail={"pinned_log_vkey": pins.log_vkey, "served_log_vkey": info.log_vkey},
        )


def _decision(index: int, data: bytes) -> Decision | None:
    envelope = orjson.loads(data)
    if envelope.get("payloadType") != DECISION_TYPE:
        return None
    record = orjson.loads(base64.b64decode(envelope["payload"]))
    # A committed (version 2) record shows its kind; its action stays at the home node.
    return Decision(index, str(record["agent"]), str(record.get("action") or record["kind"]))
