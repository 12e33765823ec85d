"""Ledger errors: see the hierarchy in ``custodes.errors``."""

from __future__ import annotations

from custodes.errors import CustodesError

__all__ = [
    "DuplicateEntry",
    "EnvelopeError",
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


class DuplicateEntry(LedgerError):
    """An entry is already in the log (a replay), or reuses an idempotency key."""

    code = "duplicate_entry"
    status = 409
