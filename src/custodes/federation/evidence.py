"""Split-view evidence: two checkpoints signed by one log that no proof can connect.

The pure core of split-view detection (docs/design/0027). An ``Evidence`` bundle holds
the log's vkey, both signed notes verbatim (with the cosignatures that name the
witnesses that saw each view) and, for checkpoints of different sizes, the hashes that
show the larger tree does not extend the smaller one. No standard format exists; ours,
version 1, is JSON::

    {"v": 1, "origin": ..., "vkey": ..., "case": "same-size" | "not-a-prefix",
     "first": <note>, "second": <note>,
     "prefix_root": <b64 or null>, "proof": [<b64>, ...],
     "seen_by": {"first": [witness names], "second": [witness names]}}

What counts as proof (``verify_evidence``): both notes verify under the vkey and name
the same origin, and either (same-size) their sizes are equal and their roots differ,
or (not-a-prefix) first.size < second.size, ``proof`` is an RFC 9162 consistency proof
from (first.size, prefix_root) to (second.size, second.root), and prefix_root differs
from first.root: second's tree at first.size is not first's tree. A missing or failed
proof alone is never evidence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from custodes.errors import CustodesError
from custodes.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from custodes.ledger.errors import LedgerError
from custodes.ledger.merkle import verify_consistency
from custodes.ledger.note import NoteVerifier, parse_note, parse_vkey

__all__ = [
    "EVIDENCE_VERSION",
    "Evidence",
    "EvidenceError",
    "SeenCheckpoint",
    "evidence_from_json",
    "open_seen",
    "pair_key",
    "prefix_evidence",
    "same_size_evidence",
    "verify_evidence",
]

EVIDENCE_VERSION = 1
Case = Literal["same-size", "not-a-prefix"]


class EvidenceError(CustodesError):
    """An evidence bundle that is malformed or does not prove a split view."""

    code = "bad_evidence"
    status = 422


@dataclass(frozen=True)
class SeenCheckpoint:
    """A checkpoint whose log signature verified, kept with its note verbatim."""

    checkpoint: Checkpoint
    note: bytes

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root_hash

    @property
    def body(self) -> str:
        return self.checkpoint.to_text()


def open_seen(note: bytes, log: NoteVerifier) -> SeenCheckpoint:
    """Verify ``note``'s log signature and origin; raise ``LedgerError`` otherwise."""
    checkpoint, _, _ = open_checkpoint(note, [log])
    if checkpoint.origin != log.name:
        raise EvidenceError(
            f"checkpoint origin {checkpoint.origin!r} is not the log {log.name!r}",
            code="wrong_origin",
        )
    return SeenCheckpoint(checkpoint, note)


def pair_key(a: SeenCheckpoint, b: SeenCheckpoint) -> str:
    """One name for an unordered pair of checkpoints (their bodies), on every node."""
    first, second = sorted((a.body, b.body))
    return hashlib.sha256(f"{first}\0{second}".encode()).hexdigest()


def _witnesses(seen: SeenCheckpoint) -> list[str]:
    return [s.name for s in parse_note(seen.note).signatures if s.name != seen.origin]


@dataclass(frozen=True)
class Evidence:
    origin: str
    vkey: str
    case: Case
    first: SeenCheckpoint
    second: SeenCheckpoint
    prefix_root: bytes | None = None
    proof: tuple[bytes, ...] = ()

    @property
    def key(self) -> str:
        return pair_key(self.first, self.second)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": EVIDENCE_VERSION,
            "origin": self.origin,
            "vkey": self.vkey,
            "case": self.case,
            "first": self.first.note.decode(),
            "second": self.second.note.decode(),
            "prefix_root": _b64(self.prefix_root) if self.prefix_root is not None else None,
            "proof": [_b64(h) for h in self.proof],
            "seen_by": {"first": _witnesses(self.first), "second": _witnesses(self.second)},
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def same_size_evidence(vkey: str, a: SeenCheckpoint, b: SeenCheckpoint) -> Evidence:
    first, second = sorted((a, b), key=lambda s: s.body)
    evidence = Evidence(first.origin, vkey, "same-size", first, second)
    verify_evidence(evidence, vkey)
    return evidence


def prefix_evidence(
    vkey: str,
    smaller: SeenCheckpoint,
    larger: SeenCheckpoint,
    prefix_root: bytes,
    proof: list[bytes],
) -> Evidence:
    evidence = Evidence(
        smaller.origin, vkey, "not-a-prefix", smaller, larger, prefix_root, tuple(proof)
    )
    verify_evidence(evidence, vkey)
    return evidence


def verify_evidence(evidence: Evidence, vkey: str) -> None:
    """Raise ``EvidenceError`` with the reason unless ``evidence`` proves a split view."""
    log = parse_vkey(vkey)
    if evidence.origin != log.name:
        raise EvidenceError(f"the evidence accuses {evidence.origin}, not the log {log.name}")
    first, second = (_reopen(s, log) for s in (evidence.first, evidence.second))
    if evidence.case == "same-size":
        if first.size != second.size:
            raise EvidenceError("the two checkpoints are not of the same size")
        if first.root == second.root:
            raise EvidenceError("the two checkpoints have the same root: no split view")
        return
    _verify_not_a_prefix(first, second, evidence.prefix_root, list(evidence.proof))


def _reopen(seen: SeenCheckpoint, log: NoteVerifier) -> SeenCheckpoint:
    try:
        return open_seen(seen.note, log)
    except LedgerError as exc:
        raise EvidenceError(f"a checkpoint is not signed by the log: {exc.message}") from exc


def _verify_not_a_prefix(
    first: SeenCheckpoint, second: SeenCheckpoint, prefix_root: bytes | None, proof: list[bytes]
) -> None:
    if not first.size < second.size:
        raise EvidenceError("the first checkpoint must be the smaller tree")
    if prefix_root is None:
        raise EvidenceError("the evidence gives no root of the larger tree at the smaller size")
    try:
        verify_consistency(first.size, second.size, proof, prefix_root, second.root)
    except LedgerError as exc:
        raise EvidenceError(
            f"the proof does not lead from prefix_root to the larger tree: {exc.message}"
        ) from exc
    if prefix_root == first.root:
        raise EvidenceError("the larger tree extends the smaller one: no split view")


def evidence_from_json(document: bytes) -> Evidence:
    """Parse a bundle (or the DSSE envelope of its log entry); verify nothing yet."""
    try:
        data = orjson.loads(document)
        if isinstance(data, dict) and "payloadType" in data:
            data = orjson.loads(base64.b64decode(data["payload"]))
        return _evidence(data)
    except (orjson.JSONDecodeError, binascii.Error, KeyError, TypeError, ValueError) as exc:
        raise EvidenceError(f"this is not a split-view evidence bundle ({exc})") from exc


def _evidence(data: dict[str, Any]) -> Evidence:
    if data.get("v") != EVIDENCE_VERSION:
        raise EvidenceError(f"unknown evidence version {data.get('v')!r}; this reads v1")
    case = data["case"]
    if case not in ("same-size", "not-a-prefix"):
        raise EvidenceError(f"unknown evidence case {case!r}")
    prefix = data.get("prefix_root")
    return Evidence(
        origin=str(data["origin"]),
        vkey=str(data["vkey"]),
        case=case,
        first=_unverified(str(data["first"])),
        second=_unverified(str(data["second"])),
        prefix_root=None if prefix is None else base64.b64decode(prefix, validate=True),
        proof=tuple(base64.b64decode(h, validate=True) for h in data.get("proof", [])),
    )


def _unverified(note: str) -> SeenCheckpoint:
    """A checkpoint read without checking its signature: ``verify_evidence`` does that."""
    try:
        data = note.encode()
        return SeenCheckpoint(parse_checkpoint(parse_note(data).text), data)
    except LedgerError as exc:
        raise EvidenceError(f"a checkpoint in the bundle is malformed: {exc.message}") from exc
