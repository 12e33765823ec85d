"""The ledger: a C2SP tlog-tiles transparency log of DSSE-signed entries.

Public verification API (DESIGN.md 4.1): hashing and proofs (RFC 6962/9162), signed
notes, checkpoints and cosignatures (C2SP), DSSE envelopes, tiles, strict Ed25519 (weak
keys refused, one form per signature) and client-side verification of a whole log.
"""

from custodes.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from custodes.ledger.cosignature import CosignatureSigner, cosign, verify_cosignature
from custodes.ledger.dsse import Envelope, EnvelopeSigner, pae, parse_envelope, sign_envelope
from custodes.ledger.ed25519 import check_public_key, public_key_problem, verify_strict
from custodes.ledger.errors import (
    CorruptEntry,
    DuplicateEntry,
    EnvelopeError,
    IntegrityAlarm,
    LedgerError,
    NoteError,
    ProofError,
    VerificationError,
    WitnessConflict,
)
from custodes.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from custodes.ledger.note import (
    Note,
    NoteSigner,
    NoteVerifier,
    open_note,
    parse_note,
    parse_vkey,
    sign_note,
)
from custodes.ledger.verifier import TrustedState, VerifyReport, verify_log

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "CompactRange",
    "CorruptEntry",
    "CosignatureSigner",
    "DuplicateEntry",
    "Envelope",
    "EnvelopeError",
    "EnvelopeSigner",
    "IntegrityAlarm",
    "LedgerError",
    "Note",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "TrustedState",
    "VerificationError",
    "VerifyReport",
    "WitnessConflict",
    "check_public_key",
    "consistency_proof",
    "cosign",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "pae",
    "parse_checkpoint",
    "parse_envelope",
    "parse_note",
    "parse_vkey",
    "public_key_problem",
    "root_of",
    "sign_envelope",
    "sign_note",
    "verify_consistency",
    "verify_cosignature",
    "verify_inclusion",
    "verify_log",
    "verify_strict",
]
