"""Audit attestations: an in-toto Statement v1 in a DSSE envelope (standards.md §2).

The auditor signs the envelope (payloadType ``application/vnd.in-toto+json``); member
regulators countersign it by adding signatures over the same PAE. ``countersigning_
parties`` is DSSE (t, n) threshold verification: each member party counts once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custodes.audits.models import (
    AuditorRef,
    AuditPredicate,
    EvidenceItem,
)
from custodes.audits.scheme import SignedScheme
from custodes.federation.roster import SignedRoster
from custodes.ledger.dsse import Envelope, EnvelopeSigner
from custodes.registry.models import AgentRecord

__all__ = [
    "OpenedAttestation",
    "build_statement",
    "countersign",
    "countersigning_parties",
    "open_attestation",
    "sign_attestation",
    "signed_by",
]


@dataclass(frozen=True)
class OpenedAttestation:
    """An attestation's id, Statement, parsed predicate and subjects (name -> digest)."""

    id: str
    statement: dict[str, Any]
    predicate: AuditPredicate
    subjects: dict[str, str]


def build_statement(
    *,
    agent: AgentRecord,
    model_digest: str,
    card_digest: str,
    code_digest: str,
    scheme: SignedScheme,
    auditor: AuditorRef,
    evidence: Sequence[EvidenceItem],
    issued: datetime,
    result: str = "PASSED",
) -> dict[str, Any]:
    raise NotImplementedError


def sign_attestation(statement: Mapping[str, Any], auditor: EnvelopeSigner) -> Envelope:
    raise NotImplementedError


def countersign(envelope: Envelope, signer: EnvelopeSigner) -> Envelope:
    raise NotImplementedError


def open_attestation(envelope: Envelope) -> OpenedAttestation:
    raise NotImplementedError


def signed_by(envelope: Envelope, public_key: bytes) -> bool:
    raise NotImplementedError


def countersigning_parties(
    envelope: Envelope, roster: SignedRoster, *, exclude: set[str] | frozenset[str] = frozenset()
) -> set[str]:
    raise NotImplementedError
