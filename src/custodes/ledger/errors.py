"""Ledger errors: see the hierarchy in ``custodes.errors``."""

from __future__ import annotations

from custodes.errors import CustodesError

__all__ = [
    "CorruptEntry",
    "DuplicateEntry",
    "EnvelopeError",
    "IntegrityAlarm",
    "LedgerError",
    "NoteError",
    "ProofError",
    "VerificationError",
    "WitnessConflict",
]


class LedgerError(CustodesError):
    code = "ledger_error"
    status = 422


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not verify."""

    code = "bad_proof"
    status = 422


class NoteError(LedgerError):
    """A signed note, checkpoint, key or cosignature is malformed or does not verify."""

    code = "bad_note"
    status = 422


class EnvelopeError(LedgerError):
    """A DSSE envelope is malformed, non-canonical, too large or wrongly signed."""

    code = "bad_envelope"
    status = 422


class WitnessConflict(LedgerError):
    """The witness's stored size for an origin differs from the client's ``old`` size."""

    code = "witness_conflict"
    status = 409

    def __init__(self, message: str, *, stored_size: int) -> None:
        super().__init__(message, detail={"stored_size": stored_size})
        self.stored_size = stored_size


class VerificationError(LedgerError):
    """A log failed verification by a client (tiles, root, signatures, consistency)."""

    code = "verification_failed"
    status = 422


class IntegrityAlarm(LedgerError):
    """The node found its own stored history inconsistent with what it signed, or a
    witness reported a larger or different tree: appends stop until a person looks."""

    code = "integrity_alarm"
    status = 503


class CorruptEntry(LedgerError):
    """A stored entry cannot be what the node accepted: it does not parse, its
    signature does not verify under the keys in force at its index, or it does not
    hash to its leaf. Names the entry."""

    code = "corrupt_entry"
    status = 422

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"entry {index} is corrupt: {reason}", detail={"index": index})
        self.index = index
        self.reason = reason


class DuplicateEntry(LedgerError):
    """An entry is already in the log (a replay), or reuses an idempotency key."""

    code = "duplicate_entry"
    status = 409
