"""SLSA Verification Summary Attestations for recognitions (reference/federation.md §6.2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from custodes.audits.models import LogRef, RecognitionDecision
from custodes.audits.scheme import SignedScheme
from custodes.federation.roster import SignedRoster
from custodes.ledger.dsse import Envelope

__all__ = ["build_vsa", "verify_vsa"]


def build_vsa(
    *,
    decision: RecognitionDecision,
    verifier_id: str,
    attestation_digest: str,
    attestation_entry: LogRef,
    scheme: SignedScheme,
    time_verified: datetime,
) -> dict[str, Any]:
    raise NotImplementedError


def verify_vsa(
    envelope: Envelope,
    roster: SignedRoster,
    party: str,
    *,
    expected_resource: str | None = None,
) -> dict[str, Any]:
    raise NotImplementedError
