"""The recognition check: pure, returns every failed condition with its reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from custodes.audits.models import Accreditation, Failure, LogRef
from custodes.audits.scheme import SignedScheme
from custodes.federation.roster import SignedRoster
from custodes.ledger.dsse import Envelope
from custodes.registry.models import AgentRecord

__all__ = ["EvidenceProof", "RecognitionCase", "check_recognition"]


@dataclass(frozen=True)
class EvidenceProof:
    """One evidence entry as its origin log holds it, with the proof of its inclusion."""

    ref: LogRef
    entry: bytes | None  # the entry as logged (None: not found)
    proof: Sequence[bytes]  # RFC 6962 inclusion proof hashes
    checkpoint: bytes | None  # the origin log's signed checkpoint note, with cosignatures


@dataclass(frozen=True)
class RecognitionCase:
    """Everything a recogniser knows when it decides on one attestation."""

    envelope: Envelope  # the attestation (maybe countersigned)
    accreditation: Accreditation | None  # the grant the predicate names (None: unknown)
    accreditation_status: str | None  # active | suspended | withdrawn
    evidence: Mapping[tuple[str, int], EvidenceProof]  # by (origin, index)
    agent: AgentRecord | None  # the agent as registered at its home
    model_digest: str | None  # its current model's digest
    card_digest: str | None  # its registered AgentCard's digest
    drift_alerts: Sequence[Mapping[str, Any]]  # agent_alerts rows since issued
    attestation_status: str  # active | withdrawn
    scheme: SignedScheme  # the scheme in force at the recogniser
    roster: SignedRoster  # the roster in force at the recogniser
    recogniser: str  # party code deciding
    trusted: frozenset[str] | None = None  # accrediting parties trusted (None: every member)
    countersignatures_needed: int | None = None  # automatic recognition: the scheme's k
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def check_recognition(case: RecognitionCase) -> list[Failure]:
    """Every condition ``case`` fails (empty: the attestation may be recognised)."""
    raise NotImplementedError
