"""Witness: C2SP tlog-witness v1.0.0 ``add-checkpoint``, the other members' guarantee.

The witness keeps, per origin, the last checkpoint it cosigned. It cosigns a new one
only if the log's signature verifies and a consistency proof from the stored size
verifies, and it stores the new checkpoint with a check-and-set in one transaction, so
two concurrent requests cannot roll its view back.

Status codes follow the spec: unknown origin 404, untrusted signature 403, old > new
400, old != stored size 409 (``text/x.tlog.size`` body), bad proof 422. For a
same-size checkpoint with a different root (a fork) we answer 422 as the spec's HEAD
does; v1.0.0's 409 would invite the client to retry with the same size forever. A log this
node holds split-view evidence against is refused first, 403 ``origin_misbehaved``
(the ``refuse`` hook; docs/design/0027).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from custodes.errors import BadRequest, NotFound
from custodes.ledger.checkpoint import MAX_TREE_SIZE, Checkpoint, open_checkpoint, origin_of
from custodes.ledger.cosignature import CosignatureSigner, cosign
from custodes.ledger.errors import NoteError, ProofError, WitnessConflict
from custodes.ledger.merkle import EMPTY_ROOT, verify_consistency
from custodes.ledger.note import NoteVerifier
from custodes.ledger.store import witnessed_logs
from custodes.store.db import read_tx, write_tx

__all__ = ["AddCheckpoint", "Witness", "format_add_checkpoint", "parse_add_checkpoint"]

_MAX_PROOF_LINES = 63
# Sizes are stored as signed 64-bit integers (BIGINT); a checkpoint beyond that is
# refused as bad input rather than overflowing the database.
MAX_WITNESSED_SIZE = 2**63 - 1


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], checkpoint: bytes) -> bytes:
    lines = [f"old {old_size}\n"] + [base64.b64encode(h).decode() + "\n" for h in proof]
    return "".join(lines).encode() + b"\n" + checkpoint


def _decimal(text: str) -> int:
    # A tree size is a uint64: at most 20 digits (and int() of thousands raises ValueError).
    if not text.isdigit() or len(text) > 20 or (len(text) > 1 and text[0] == "0"):
        raise BadRequest(f"{text[:24]!r} is not a decimal tree size", code="malformed_request")
    if int(text) > MAX_TREE_SIZE:
        raise BadRequest(f"old size {text} exceeds 2^64-1", code="malformed_request")
    return int(text)


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse ``old N\\n``, up to 63 base64 proof lines, an empty line, a signed checkpoint."""
    head, sep, checkpoint = body.partition(b"\n\n")
    if not sep:
        raise BadRequest(
            "request has no empty line before the checkpoint", code="malformed_request"
        )
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise BadRequest("request header is not ASCII", code="malformed_request") from exc
    if not lines[0].startswith("old "):
        raise BadRequest('request must start with "old <size>"', code="malformed_request")
    if len(lines) - 1 > _MAX_PROOF_LINES:
        raise BadRequest("consistency proof has more than 63 lines", code="malformed_request")
    try:
        proof = tuple(base64.b64decode(line, validate=True) for line in lines[1:])
    except binascii.Error as exc:
        raise BadRequest("a proof line is not base64", code="malformed_request") from exc
    return AddCheckpoint(_decimal(lines[0][4:]), proof, checkpoint)


class Witness:
    def __init__(
        self,
        engine: Engine,
        signer: CosignatureSigner,
        logs: Sequence[NoteVerifier],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._logs: dict[str, list[NoteVerifier]] = {}
        self.set_logs(logs)
        self._clock = clock
        # Split views (docs/design/0027): ``refuse(origin)`` raises to refuse a log this
        # node holds evidence against; ``on_cosigned(checkpoint, note)`` hears each note
        # cosigned, with this witness's cosignature line, to keep it verbatim.
        self.refuse: Callable[[str], None] = lambda _origin: None
        self.on_cosigned: Callable[[Checkpoint, bytes], None] = lambda _cp, _note: None

    def set_logs(self, logs: Sequence[NoteVerifier]) -> None:
        """Witness exactly ``logs`` from now on (the alliance roster changes them at run
        time); what was cosigned for a log no longer listed is kept, not trusted."""
        # Every trusted key of a log counts (a log may rotate or hold two keys at once).
        trusted: dict[str, list[NoteVerifier]] = {}
        for verifier in logs:
            trusted.setdefault(verifier.name, []).append(verifier)
        self._logs = trusted  # one assignment: a request sees the old set or the new

    def witnessed(self) -> list[str]:
        """The origins this witness cosigns now."""
        return sorted(self._logs)

    @property
    def name(self) -> str:
        return self._signer.name

    def vkey(self) -> str:
        return self._signer.vkey()

    def _open(self, request: AddCheckpoint) -> tuple[Checkpoint, str]:
        origin = origin_of(request.checkpoint)
        verifiers = self._logs.get(origin)
        if not verifiers:
            raise NotFound(f"this witness does not witness the log {origin!r}", code="unknown_log")
        checkpoint, note, _ = open_checkpoint(request.checkpoint, verifiers)
        if checkpoint.size > MAX_WITNESSED_SIZE:
            raise BadRequest(
                f"tree size {checkpoint.size} is larger than this witness can record "
                f"({MAX_WITNESSED_SIZE}); no real log is that large",
                code="size_out_of_range",
            )
        if checkpoint.origin != origin:
            raise NoteError(
                "checkpoint origin does not match its first line", code="malformed_checkpoint"
            )
        if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
            raise ProofError("a size-0 checkpoint must carry the empty tree's root")
        if request.old_size > checkpoint.size:
            raise BadRequest(
                f"old size {request.old_size} is larger than the checkpoint's size "
                f"{checkpoint.size}",
                code="old_after_new",
            )
        return checkpoint, note.text

    def add_checkpoint(self, body: bytes) -> str:
        """Verify and record a checkpoint; return the cosignature line(s)."""
        request = parse_add_checkpoint(body)
        self.refuse(origin_of(request.checkpoint))
        checkpoint, text = self._open(request)
        with write_tx(self._engine) as conn:
            row = conn.execute(
                select(witnessed_logs.c.size, witnessed_logs.c.root)
                .where(witnessed_logs.c.origin == checkpoint.origin)
                .with_for_update()
            ).one_or_none()
            stored_size, stored_root = (0, EMPTY_ROOT) if row is None else (row.size, row.root)
            self._check(request, checkpoint, int(stored_size), bytes(stored_root))
            values = {
                "size": checkpoint.size,
                "root": checkpoint.root_hash,
                "checkpoint": request.checkpoint,
                "updated_at": self._clock(),
            }
            if row is None:
                conn.execute(insert(witnessed_logs).values(origin=checkpoint.origin, **values))
            else:
                conn.execute(
                    update(witnessed_logs)
                    .where(witnessed_logs.c.origin == checkpoint.origin)
                    .values(**values)
                )
        line = cosign(text, self._signer, int(self._clock())).line()
        self.on_cosigned(checkpoint, request.checkpoint + line.rstrip("\n").encode() + b"\n")
        return line

    @staticmethod
    def _check(
        request: AddCheckpoint, cp: Checkpoint, stored_size: int, stored_root: bytes
    ) -> None:
        if request.old_size != stored_size:
            raise WitnessConflict(
                f"this witness holds size {stored_size} for {cp.origin}, not {request.old_size}",
                stored_size=stored_size,
            )
        if request.old_size == cp.size:
            if request.proof or cp.root_hash != stored_root:
                raise ProofError(
                    f"checkpoint of size {cp.size} differs from the one this witness cosigned",
                    detail={"stored_root": stored_root.hex(), "root": cp.root_hash.hex()},
                )
            return
        if request.old_size == 0:
            if request.proof:
                raise ProofError("a consistency proof from size 0 must be empty")
            return
        verify_consistency(request.old_size, cp.size, request.proof, stored_root, cp.root_hash)

    def state(self, origin: str) -> tuple[int, bytes, bytes] | None:
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(
                    witnessed_logs.c.size, witnessed_logs.c.root, witnessed_logs.c.checkpoint
                ).where(witnessed_logs.c.origin == origin)
            ).one_or_none()
        return None if row is None else (int(row.size), bytes(row.root), bytes(row.checkpoint))
