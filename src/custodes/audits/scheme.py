"""The common scheme: a versioned document the members sign like the roster.

The signed form is ``{"signed": SchemeBody JSON, "signatures": [{"keyid", "sig"}]}``,
TUF style: ``keyid`` is the roster's KEYID of the member's roster key
(``custodes.federation.roster.key_id``) and ``sig`` the hex Ed25519 signature over the
canonical JSON of ``signed``. A version counts when signed by at least the roster's
threshold of distinct member roster keys (the roster in force), is not expired, and
follows the previous version by exactly one.

``evaluate_evidence`` is the threshold check: the scheme's requirement for a sector
and tier against the evaluation results and kill-switch tests an attestation rests on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from custodes.audits.models import (
    EvidenceSummary,
    Failure,
    KillswitchTest,
    Requirement,
    SchemeBody,
    SchemeRef,
    SuiteRequirement,
)
from custodes.errors import BadRequest
from custodes.evals.results import EvalResult
from custodes.federation.roster import SignedRoster
from custodes.ledger.dsse import EnvelopeSigner

__all__ = [
    "SchemeError",
    "SignedScheme",
    "evaluate_evidence",
    "example_scheme",
    "sign_scheme",
    "summarise_result",
    "summarise_test",
    "verify_scheme",
]


class SchemeError(BadRequest):
    """A scheme document that does not verify; ``code`` names the failed rule
    (``scheme_invalid``, ``scheme_signatures``, ``scheme_version``, ``scheme_expired``)."""

    code = "scheme_invalid"
    status = 422


@dataclass(frozen=True)
class SignedScheme:
    """One verified scheme version: the signed document and its parsed body."""

    document: dict[str, Any]
    body: SchemeBody

    @property
    def version(self) -> int:
        return self.body.version

    @property
    def id(self) -> str:
        return self.body.id

    def digest(self) -> str:
        raise NotImplementedError

    def ref(self) -> SchemeRef:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        raise NotImplementedError


def sign_scheme(
    body: SchemeBody | Mapping[str, Any],
    signer: EnvelopeSigner,
    document: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    raise NotImplementedError


def verify_scheme(
    document: Any,
    roster: SignedRoster,
    *,
    now: datetime,
    previous: SignedScheme | None = None,
) -> SignedScheme:
    raise NotImplementedError


def summarise_result(result: EvalResult) -> EvidenceSummary:
    raise NotImplementedError


def summarise_test(test: KillswitchTest) -> EvidenceSummary:
    raise NotImplementedError


def evaluate_evidence(
    requirement: Requirement,
    results: Sequence[EvalResult],
    tests: Sequence[KillswitchTest],
) -> list[Failure]:
    raise NotImplementedError


def example_scheme(
    *,
    issued: datetime | None = None,
    expires: datetime | None = None,
    version: int = 1,
    scheme_id: str = "custodes-common",
    countersignatures: int = 1,
    partners_recognise: bool = False,
) -> SchemeBody:
    raise NotImplementedError


_ = (UTC, timedelta, hashlib, SuiteRequirement)
