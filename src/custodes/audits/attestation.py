"""Audit attestations: an in-toto Statement v1 in a DSSE envelope (standards.md §2).

The accredited auditor signs the envelope (payloadType ``application/vnd.in-toto+json``,
payload the canonical JSON of the Statement); member regulators countersign it by adding
signatures over the same PAE, so every copy has the same payload and the same id
(``attestation_id``). ``countersigning_parties`` is DSSE (t, n) threshold verification:
the member parties one of whose vouched regulator keys produced a valid signature, each
party once. Key ids are hints only: every key of a party is tried.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from custodes.audits.models import (
    AUDIT_PREDICATE,
    STATEMENT_TYPE,
    STATEMENT_V1,
    AuditAgent,
    AuditorRef,
    AuditPredicate,
    EvidenceItem,
    attestation_id,
)
from custodes.audits.scheme import SignedScheme
from custodes.errors import BadRequest
from custodes.federation.roster import SignedRoster
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import MAX_SIGNATURES, Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.ed25519 import verify_strict
from custodes.registry.models import AgentRecord

__all__ = [
    "OpenedAttestation",
    "build_statement",
    "countersign",
    "countersigning_parties",
    "open_attestation",
    "sign_attestation",
    "signed_by",
    "subject_digest",
]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def _invalid(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_attestation", status=422)


@dataclass(frozen=True)
class OpenedAttestation:
    """An attestation's id, Statement, parsed predicate and subjects (name -> digest)."""

    id: str
    statement: dict[str, Any]
    predicate: AuditPredicate
    subjects: dict[str, str]

    def subject(self, prefix: str) -> str | None:
        """The digest of the first subject whose name starts with ``prefix``."""
        return subject_digest(self.subjects, prefix)


def subject_digest(subjects: Mapping[str, str], prefix: str) -> str | None:
    return next((d for n, d in subjects.items() if n.startswith(prefix)), None)


def _subject(name: str, digest: str) -> dict[str, Any]:
    if not _DIGEST.match(digest):
        raise BadRequest(
            f"the digest of {name} must be sha256:<64 lowercase hex>, not {digest[:80]!r}",
            code="invalid_digest",
            status=422,
        )
    return {"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}


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
    """The in-toto Statement v1 of an audit of ``agent`` under ``scheme``.

    It expires ``validity_days`` after ``issued`` (the scheme's requirement for the
    agent's sector and tier). Evidence is referenced (origin, index, leaf hash) with its
    summary figures, never copied.
    """
    requirement = scheme.body.requirement(agent.sector, agent.risk_tier)
    if requirement is None:
        raise BadRequest(
            f"scheme {scheme.id} version {scheme.version} has no requirement for sector "
            f"{agent.sector} at tier {agent.risk_tier}; nothing can be attested for it",
            code="scheme_no_requirement",
            status=422,
        )
    suites = sorted({e.summary.suite for e in evidence if e.summary.suite is not None})
    predicate = AuditPredicate(
        scheme=scheme.ref(),
        auditor=auditor,
        agent=AuditAgent(
            id=agent.id,
            operator=agent.operator,
            sector=agent.sector,
            risk_tier=agent.risk_tier,
            home=agent.home_jurisdiction,
        ),
        suites=tuple(suites or [s.id for s in requirement.suites]),
        evidence=tuple(evidence),
        result=result,  # validated by the model (PASSED or FAILED)
        issued=issued,
        expires=issued + timedelta(days=requirement.validity_days),
    )
    short = agent.id.rsplit(":", 1)[-1]
    return {
        "_type": STATEMENT_V1,
        "subject": [
            _subject(f"model:{agent.model or short}", model_digest),
            _subject(f"agentcard:{agent.id}", card_digest),
            _subject(f"code:{agent.id}", code_digest),
        ],
        "predicateType": AUDIT_PREDICATE,
        "predicate": predicate.model_dump(mode="json", exclude_none=True),
    }


def sign_attestation(statement: Mapping[str, Any], auditor: EnvelopeSigner) -> Envelope:
    """The DSSE envelope of ``statement`` signed by the auditor's key."""
    return sign_envelope(STATEMENT_TYPE, canonical_dumps(dict(statement)), [auditor])


def signed_by(envelope: Envelope, public_key: bytes) -> bool:
    """Whether any signature on ``envelope`` verifies under ``public_key`` (keyid ignored)."""
    message = envelope.signed_bytes()
    return any(verify_strict(public_key, s.sig, message) for s in envelope.signatures)


def countersign(envelope: Envelope, signer: EnvelopeSigner) -> Envelope:
    """``envelope`` with one more signature, by ``signer``, over the same PAE."""
    if signed_by(envelope, signer.public_key):
        raise BadRequest(
            "this key has already signed the attestation; each key signs an envelope once",
            code="already_signed",
            status=409,
        )
    if len(envelope.signatures) >= MAX_SIGNATURES:
        raise BadRequest(
            f"the envelope already carries {MAX_SIGNATURES} signatures, the most it may",
            code="too_many_signatures",
            status=422,
        )
    signature = signer.sign(envelope.signed_bytes())
    return Envelope(envelope.payload_type, envelope.payload, (*envelope.signatures, signature))


def _subjects(statement: Mapping[str, Any]) -> dict[str, str]:
    raw = statement.get("subject")
    if not isinstance(raw, list) or not raw:
        raise _invalid("the Statement's subject must be a non-empty list")
    subjects: dict[str, str] = {}
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        digest = item.get("digest") if isinstance(item, dict) else None
        value = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(name, str) or not isinstance(value, str) or not _HEX.match(value):
            raise _invalid(
                'each subject must be {"name": ..., "digest": {"sha256": <64 lowercase hex>}}'
            )
        if name in subjects:
            raise _invalid(f"the subject {name!r} is listed twice")
        subjects[name] = f"sha256:{value}"
    return subjects


def open_attestation(envelope: Envelope) -> OpenedAttestation:
    """Parse an audit attestation's Statement and predicate (shape only, no signatures)."""
    if envelope.payload_type != STATEMENT_TYPE:
        raise _invalid(f"an attestation's payloadType is {STATEMENT_TYPE}")
    try:
        statement = orjson.loads(envelope.payload)
    except orjson.JSONDecodeError as exc:
        raise _invalid("the attestation's payload is not JSON") from exc
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_V1:
        raise _invalid(f"the payload is not an in-toto Statement ({STATEMENT_V1})")
    if statement.get("predicateType") != AUDIT_PREDICATE:
        raise _invalid(f"the predicateType is not {AUDIT_PREDICATE}")
    subjects = _subjects(statement)
    try:
        predicate = AuditPredicate.model_validate(statement.get("predicate"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "predicate"
        raise _invalid(f"the audit predicate is invalid at {where}: {first['msg']}") from exc
    return OpenedAttestation(attestation_id(envelope.payload), statement, predicate, subjects)


def _party_keys(roster: SignedRoster, code: str) -> list[bytes]:
    party = roster.party(code)
    if party is None:
        return []
    return [base64.b64decode(r.public_key) for r in party.regulators]


def countersigning_parties(
    envelope: Envelope,
    roster: SignedRoster,
    *,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> set[str]:
    """The member parties whose vouched regulator keys signed ``envelope`` (each once).

    Bad signatures are skipped; a party in ``exclude`` is not counted.
    """
    message = envelope.signed_bytes()
    parties: set[str] = set()
    for party in roster.body.members():
        if party.code in exclude:
            continue
        for key in _party_keys(roster, party.code):
            if any(verify_strict(key, s.sig, message) for s in envelope.signatures):
                parties.add(party.code)
                break
    return parties
