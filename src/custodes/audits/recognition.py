"""The recognition check: pure, returns every failed condition with its reason.

A member recognises an audit attestation when (docs/design/0028): it may decide at all
(``partner``); the attestation is well formed (``attestation``) and signed by the
auditor key of the accreditation it names (``signature``); it is in its validity window
(``expired``) and not withdrawn (``withdrawn``); the accreditation is a grant in force,
by a member the recogniser trusts, to that auditor (``accreditation``) for that sector
and those suites (``scope``), and the auditor is not affiliated with the agent's
operator (``conflict_of_interest``); it was made under the scheme in force
(``scheme``); every evidence entry is included under a checkpoint of its origin's log
cosigned by a quorum of members (``evidence_inclusion``), is what the predicate says it
is (``evidence``) and meets the scheme's thresholds (``threshold``, ``drift``,
``killswitch_test``); no drift alert on the agent since (``drift``); the subject
digests are the agent's registered model and card (``subject``); and, for automatic
recognition, enough members countersigned (``countersignatures``).

Every condition is checked even after one fails, so a refusal lists all its reasons.
The only inputs are the case's bytes and records; the clock is ``case.now``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from custodes.audits.attestation import (
    OpenedAttestation,
    countersigning_parties,
    open_attestation,
    signed_by,
)
from custodes.audits.evidence import EvidenceProof, ProvenEvidence, prove_evidence
from custodes.audits.models import Accreditation, Failure
from custodes.audits.scheme import SignedScheme, evaluate_evidence
from custodes.errors import CustodesError
from custodes.federation.roster import SignedRoster
from custodes.ledger.dsse import Envelope
from custodes.ledger.ed25519 import verify_strict
from custodes.registry.models import AgentRecord

__all__ = ["CONDITIONS", "EvidenceProof", "RecognitionCase", "check_recognition"]

CONDITIONS = (
    "partner",
    "attestation",
    "signature",
    "expired",
    "withdrawn",
    "accreditation",
    "scope",
    "conflict_of_interest",
    "scheme",
    "evidence_inclusion",
    "evidence",
    "threshold",
    "drift",
    "killswitch_test",
    "subject",
    "countersignatures",
)


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


def _fail(condition: str, reason: str) -> Failure:
    return Failure(condition=condition, reason=reason)


def check_recognition(case: RecognitionCase) -> list[Failure]:
    """Every condition ``case`` fails (empty: the attestation may be recognised)."""
    failures = _partner(case)
    try:
        opened = open_attestation(case.envelope)
    except CustodesError as exc:
        return [*failures, _fail("attestation", exc.message)]
    if opened.predicate.result != "PASSED":
        failures.append(
            _fail(
                "attestation", "the auditor's result is FAILED; only a PASSED audit is recognised"
            )
        )
    failures += _signature(case)
    failures += _window(case, opened)
    failures += _accreditation(case, opened)
    failures += _scope(case, opened)
    failures += _scheme(case, opened)
    parsed, evidence_failures = prove_evidence(opened.predicate, case.evidence, case.roster)
    failures += evidence_failures
    failures += _thresholds(case, opened, parsed)
    failures += _drift(case)
    failures += _subject(case, opened)
    failures += _countersignatures(case)
    return failures


# -- who decides ---------------------------------------------------------------------------
def _partner(case: RecognitionCase) -> list[Failure]:
    party = case.roster.party(case.recogniser)
    if party is None:
        return [
            _fail(
                "partner",
                f"{case.recogniser} is not a party of roster version {case.roster.version}; "
                "only the alliance's members recognise attestations",
            )
        ]
    if party.status in ("suspended", "removed"):
        return [
            _fail(
                "partner",
                f"{party.code} is {party.status} on roster version {case.roster.version}; "
                "it may not recognise attestations",
            )
        ]
    if party.status == "partner" and not case.scheme.body.partners_recognise:
        return [
            _fail(
                "partner",
                f"{party.code} is a partner and scheme {case.scheme.id} version "
                f"{case.scheme.version} gives partners no say in recognition",
            )
        ]
    return []


# -- the attestation itself ------------------------------------------------------------------
def _auditor_key(case: RecognitionCase) -> bytes | None:
    grant = case.accreditation
    if grant is None or grant.auditor_key is None:
        return None
    return base64.b64decode(grant.auditor_key)


def _signature(case: RecognitionCase) -> list[Failure]:
    key = _auditor_key(case)
    if key is None:
        return [
            _fail(
                "signature",
                "no accreditation grant gives the auditor's key, so the auditor's signature "
                "cannot be verified",
            )
        ]
    if signed_by(case.envelope, key):
        return []
    return [
        _fail(
            "signature",
            "no signature on the envelope verifies under the auditor key of the "
            "accreditation grant (tampered, or signed by another key)",
        )
    ]


def _window(case: RecognitionCase, opened: OpenedAttestation) -> list[Failure]:
    predicate = opened.predicate
    failures: list[Failure] = []
    if predicate.expires <= case.now:
        failures.append(
            _fail(
                "expired",
                f"the attestation expired at {predicate.expires.isoformat()}; a new audit is "
                "needed",
            )
        )
    if predicate.issued > case.now:
        failures.append(
            _fail("expired", f"the attestation is issued in the future ({predicate.issued})")
        )
    if case.attestation_status != "active":
        failures.append(
            _fail("withdrawn", f"the attestation is {case.attestation_status}; it is not in force")
        )
    return failures


# -- the accreditation -----------------------------------------------------------------------
def _accreditation(case: RecognitionCase, opened: OpenedAttestation) -> list[Failure]:
    named = opened.predicate.auditor
    grant = case.accreditation
    if grant is None:
        return [
            _fail(
                "accreditation",
                f"accreditation {named.accreditation} is unknown; the auditor is not accredited",
            )
        ]
    failures: list[Failure] = []

    def fail(reason: str) -> None:
        failures.append(_fail("accreditation", f"accreditation {grant.id}: {reason}"))

    if grant.op != "grant":
        fail(f"the record given is a {grant.op}, not the grant")
    if grant.id != named.accreditation or grant.jurisdiction != named.jurisdiction:
        fail(f"the attestation names {named.accreditation} of {named.jurisdiction}")
    if grant.auditor != named.id:
        fail(f"it accredits {grant.auditor}, not {named.id} that signed the attestation")
    if case.accreditation_status != "active":
        fail(f"it is {case.accreditation_status or 'of unknown status'}, not in force")
    if grant.valid_from is not None and grant.valid_until is not None:
        for label, when in (
            ("the attestation was issued", opened.predicate.issued),
            ("now", case.now),
        ):
            if not grant.valid_from <= when < grant.valid_until:
                fail(
                    f"{label} ({when.isoformat()}) is outside its validity "
                    f"{grant.valid_from.isoformat()} to {grant.valid_until.isoformat()}"
                )
    party = case.roster.party(grant.jurisdiction)
    if party is None or party.status != "member":
        status = "not a party" if party is None else f"a {party.status}"
        fail(
            f"{grant.jurisdiction} is {status} of roster version {case.roster.version}, "
            "not a member"
        )
    elif case.trusted is not None and grant.jurisdiction not in case.trusted:
        fail(f"{case.recogniser} does not trust accreditations by {grant.jurisdiction}")
    return failures


def _scope(case: RecognitionCase, opened: OpenedAttestation) -> list[Failure]:
    grant = case.accreditation
    predicate = opened.predicate
    failures: list[Failure] = []
    agent = case.agent
    if agent is not None and (agent.sector, agent.risk_tier) != (
        predicate.agent.sector,
        predicate.agent.risk_tier,
    ):
        failures.append(
            _fail(
                "scope",
                f"the audit covers sector {predicate.agent.sector} at tier "
                f"{predicate.agent.risk_tier}; the agent is registered as {agent.sector} at "
                f"{agent.risk_tier}",
            )
        )
    if grant is None or grant.scope is None:
        return failures
    if predicate.agent.sector not in grant.scope.sectors:
        failures.append(
            _fail(
                "scope",
                f"accreditation {grant.id} covers sectors {', '.join(grant.scope.sectors)}, "
                f"not {predicate.agent.sector}",
            )
        )
    suites = set(predicate.suites) | {
        e.summary.suite for e in predicate.evidence if e.summary.suite is not None
    }
    outside = sorted(suites - set(grant.scope.suites))
    if outside:
        failures.append(
            _fail(
                "scope",
                f"accreditation {grant.id} covers suites {', '.join(grant.scope.suites)}, not "
                f"{', '.join(outside)}",
            )
        )
    operator = agent.operator if agent is not None else predicate.agent.operator
    if operator in grant.affiliations or predicate.agent.operator in grant.affiliations:
        failures.append(
            _fail(
                "conflict_of_interest",
                f"auditor {grant.auditor} is affiliated with {operator}, the agent's operator; "
                "it may not attest that operator's agents",
            )
        )
    return failures


def _scheme(case: RecognitionCase, opened: OpenedAttestation) -> list[Failure]:
    stated, ours = opened.predicate.scheme, case.scheme.ref()
    failures: list[Failure] = []
    if stated != ours:
        failures.append(
            _fail(
                "scheme",
                f"the attestation was made under scheme {stated.id} version {stated.version} "
                f"({stated.digest[:19]}…); the scheme in force is {ours.id} version "
                f"{ours.version} ({ours.digest[:19]}…)",
            )
        )
    agent = opened.predicate.agent
    if case.scheme.body.requirement(agent.sector, agent.risk_tier) is None:
        failures.append(
            _fail(
                "scheme",
                f"scheme {ours.id} version {ours.version} has no requirement for sector "
                f"{agent.sector} at tier {agent.risk_tier}",
            )
        )
    return failures


def _thresholds(
    case: RecognitionCase, opened: OpenedAttestation, parsed: ProvenEvidence
) -> list[Failure]:
    agent = opened.predicate.agent
    requirement = case.scheme.body.requirement(agent.sector, agent.risk_tier)
    if requirement is None:
        return []  # the scheme condition already says so
    return evaluate_evidence(requirement, parsed.results, parsed.tests)


def _drift(case: RecognitionCase) -> list[Failure]:
    if not case.drift_alerts:
        return []
    first = case.drift_alerts[0]
    return [
        _fail(
            "drift",
            f"{len(case.drift_alerts)} drift alert(s) on the agent since the audit (first: "
            f"{first.get('kind', 'alert')} at entry {first.get('entry_index', '?')}); a new "
            "audit is needed",
        )
    ]


def _subject(case: RecognitionCase, opened: OpenedAttestation) -> list[Failure]:
    agent = case.agent
    if agent is None:
        return [
            _fail(
                "subject",
                f"agent {opened.predicate.agent.id} is not registered at its home; its digests "
                "cannot be compared",
            )
        ]
    failures: list[Failure] = []
    if agent.id != opened.predicate.agent.id:
        failures.append(
            _fail("subject", f"the attestation is for {opened.predicate.agent.id}, not {agent.id}")
        )
    for prefix, what, current in (
        ("model:", "model", case.model_digest),
        ("agentcard:", "AgentCard", case.card_digest),
    ):
        stated = opened.subject(prefix)
        if current is None or stated != current:
            failures.append(
                _fail(
                    "subject",
                    f"the attested {what} digest {stated or 'is missing and'} differs from the "
                    f"agent's registered {what} ({current or 'none registered'}); audit the "
                    "current version",
                )
            )
    return failures


def _countersignatures(case: RecognitionCase) -> list[Failure]:
    needed = case.countersignatures_needed
    if needed is None:
        return []
    key = _auditor_key(case)
    envelope = case.envelope
    if key is not None:  # the auditor's own signature does not count
        message = envelope.signed_bytes()
        others = tuple(s for s in envelope.signatures if not verify_strict(key, s.sig, message))
        envelope = Envelope(envelope.payload_type, envelope.payload, others)
    parties = countersigning_parties(envelope, case.roster)
    if len(parties) >= needed:
        return []
    by = ", ".join(sorted(parties)) or "no member"
    return [
        _fail(
            "countersignatures",
            f"countersigned by {by}; automatic recognition needs {needed} member countersignatures",
        )
    ]
