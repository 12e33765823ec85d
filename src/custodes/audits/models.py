"""Audits and mutual recognition: the records (DESIGN.md 4.4, docs/design/0028).

Every record here is logged on a node's log in a DSSE envelope signed by the party
acting; the tables in ``custodes.audits.store`` are projections of those entries.

- ``Accreditation`` (``ACCREDITATION_TYPE``): a regulator grants, suspends, reinstates
  or withdraws an auditor's accreditation (scope: sectors and suites; validity). The
  grant carries the auditor's public key, so any member verifies its attestations from
  the log alone.
- The common scheme (``SCHEME_TYPE``): a versioned document the members sign like the
  roster (``custodes.audits.scheme``): for each sector and risk tier, the suites and
  versions required, the thresholds, how many member countersignatures make a
  recognition automatic, and how long an attestation stays valid.
- An audit attestation: an in-toto Statement v1 (``STATEMENT_TYPE``,
  ``AUDIT_PREDICATE``) whose subjects are the agent's model, AgentCard and code digests
  and whose predicate is ``AuditPredicate``; DSSE-signed by the accredited auditor,
  countersigned (more signatures on the same envelope) by member regulators.
- ``AttestationStatus``: the auditor or its accrediting regulator withdraws one.
- ``RecognitionDecision`` (``RECOGNITION_TYPE``): a member recognises, refuses (with
  every failed condition) or withdraws; a recognition also issues a SLSA verification
  summary (``VSA_PREDICATE``, an in-toto Statement signed by the recognising node).
- ``KillswitchTest`` (``KILLSWITCH_TEST_TYPE``): the result of a kill-switch
  conformance test, logged by the agent's home node as evidence a scheme can require.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from custodes.registry.models import AGENT_ID, OPERATOR_ID

__all__ = [
    "ACCREDITATION_ID",
    "ACCREDITATION_TYPE",
    "ATTESTATION_STATUS_TYPE",
    "AUDIT_PREDICATE",
    "AUDIT_TYPES",
    "KILLSWITCH_TEST_TYPE",
    "RECOGNITION_TYPE",
    "SCHEME_TYPE",
    "STATEMENT_TYPE",
    "STATEMENT_V1",
    "VSA_PREDICATE",
    "Accreditation",
    "AccreditationScope",
    "AttestationStatus",
    "AuditAgent",
    "AuditPredicate",
    "AuditorRef",
    "EvidenceItem",
    "EvidenceSummary",
    "Failure",
    "KillswitchTest",
    "LogRef",
    "RecognitionDecision",
    "Requirement",
    "SchemeBody",
    "SchemeRef",
    "SuiteRequirement",
    "attestation_id",
]

ACCREDITATION_TYPE = "application/vnd.custodes.accreditation+json"
SCHEME_TYPE = "application/vnd.custodes.scheme+json"
STATEMENT_TYPE = "application/vnd.in-toto+json"  # DSSE payloadType of in-toto Statements
ATTESTATION_STATUS_TYPE = "application/vnd.custodes.attestation-status+json"
RECOGNITION_TYPE = "application/vnd.custodes.recognition+json"
KILLSWITCH_TEST_TYPE = "application/vnd.custodes.killswitch-test+json"

AUDIT_TYPES = frozenset(
    {
        ACCREDITATION_TYPE,
        SCHEME_TYPE,
        STATEMENT_TYPE,
        ATTESTATION_STATUS_TYPE,
        RECOGNITION_TYPE,
        KILLSWITCH_TEST_TYPE,
    }
)

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
AUDIT_PREDICATE = "https://custodes.dev/attestation/agent-safety-audit/v1"
VSA_PREDICATE = "https://slsa.dev/verification_summary/v1"

ACCREDITATION_ID = r"^acc:[a-z]{2}:[a-z0-9][a-z0-9-]{0,62}$"
AUDITOR_ID = r"^auditor:[a-z0-9][a-z0-9-]{0,62}$"
REGULATOR_ID = r"^regulator:[a-z0-9][a-z0-9-]{0,62}$"
DIGEST = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
HEX32 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
PARTY = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
RiskTier = Literal["minimal", "limited", "high", "critical"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)


def attestation_id(payload: bytes) -> str:
    """An attestation's id: ``sha256:`` + hex SHA-256 of its DSSE payload (the Statement
    bytes as signed), the same for every countersigned copy of the envelope."""
    return "sha256:" + hashlib.sha256(payload).hexdigest()


class LogRef(_Record):
    """One entry of one log: its origin, index and RFC 6962 leaf hash (lowercase hex)."""

    origin: str = Field(min_length=1, max_length=256)
    index: int = Field(ge=0)
    leaf_hash: HEX32


class Failure(_Record):
    """One failed condition of a recognition (or gate) check, and why it failed.

    ``condition`` is a stable machine name (``signature``, ``expired``, ``accreditation``,
    ``scope``, ``evidence_inclusion``, ``threshold``, ``subject``, ``countersignatures``,
    ``conflict_of_interest``, ``partner``, ``drift``, ``withdrawn``, ``scheme`` ...);
    ``reason`` one sentence a person can act on.
    """

    condition: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2048)


# -- accreditation ---------------------------------------------------------------------
class AccreditationScope(_Record):
    sectors: tuple[str, ...] = Field(min_length=1, max_length=32)
    suites: tuple[str, ...] = Field(min_length=1, max_length=64)  # suite ids


class Accreditation(_Record):
    """A regulator's act on an auditor's accreditation, version 1.

    A ``grant`` names the auditor, its raw Ed25519 key (base64), its name, the operators
    it is affiliated with (it may not attest their agents), the scope and validity. A
    ``suspend``, ``reinstate`` or ``withdraw`` names the accreditation and a reason. Only
    a regulator of the party named in ``jurisdiction`` (and in the id) acts on it.
    """

    v: Literal[1] = 1
    op: Literal["grant", "suspend", "reinstate", "withdraw"]
    id: str = Field(pattern=ACCREDITATION_ID)
    jurisdiction: PARTY
    auditor: str = Field(pattern=AUDITOR_ID)
    auditor_name: str | None = Field(default=None, min_length=1, max_length=256)
    auditor_key: str | None = Field(default=None, min_length=44, max_length=44)
    affiliations: tuple[Annotated[str, Field(pattern=OPERATOR_ID)], ...] = ()
    scope: AccreditationScope | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=2048)
    actor: str = Field(pattern=REGULATOR_ID)
    at: datetime

    @model_validator(mode="after")
    def _shape(self) -> Accreditation:
        grant = (self.auditor_key, self.auditor_name, self.scope, self.valid_from, self.valid_until)
        if self.op == "grant":
            if any(v is None for v in grant):
                raise ValueError(
                    "a grant names auditor_name, auditor_key, scope, valid_from and valid_until"
                )
            assert self.valid_from is not None
            assert self.valid_until is not None
            if self.valid_until <= self.valid_from:
                raise ValueError("valid_until must be after valid_from")
        elif self.reason is None:
            raise ValueError(f"a {self.op} gives its reason")
        if self.id.split(":")[1] != self.jurisdiction.lower():
            raise ValueError("an accreditation id names its jurisdiction: acc:<code>:<name>")
        return self


# -- the common scheme --------------------------------------------------------------------
class SuiteRequirement(_Record):
    """What one suite's published result must show (figures as the EvalResult has them)."""

    id: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    min_attempts: int = Field(default=1, ge=1)
    max_overall_upper: float = Field(ge=0, le=1)  # Wilson upper bound of overall ASR
    max_family_asr: float | None = Field(default=None, ge=0, le=1)  # any one family's ASR
    max_over_refusal: float | None = Field(default=None, ge=0, le=1)


class Requirement(_Record):
    """What an agent of one sector and risk tier must show to be recognised."""

    sector: str = Field(min_length=1, max_length=64)
    risk_tier: RiskTier | Literal["*"] = "*"
    suites: tuple[SuiteRequirement, ...] = Field(min_length=1, max_length=16)
    no_drift_alert: bool = True  # no drift alert against the previous audit, none live
    killswitch_test: bool = True  # a passed conformance test among the evidence
    max_time_to_halt_ms: int | None = Field(default=None, ge=1)
    validity_days: int = Field(ge=1, le=3660)  # how long an attestation stays valid
    countersignatures: int = Field(default=1, ge=0, le=16)  # k for automatic recognition


class SchemeBody(_Record):
    """The alliance's common scheme, one version (``signed`` of the signed document)."""

    type: Literal["custodes-common-scheme"] = Field(default="custodes-common-scheme", alias="_type")
    id: str = Field(min_length=1, max_length=128)
    version: int = Field(ge=1)
    issued: datetime
    expires: datetime
    partners_recognise: bool = False  # whether partners' regulators may decide at all
    requirements: tuple[Requirement, ...] = Field(min_length=1, max_length=64)
    # The red-teaming repository's re-test threshold: the most a patched probe's observed
    # ASR may be for ``verified`` (custodes.redteam.retest; absent: its default, 0.0).
    redteam_max_asr: float | None = Field(default=None, ge=0, le=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def requirement(self, sector: str, risk_tier: str) -> Requirement | None:
        """The requirement for ``sector`` at ``risk_tier`` (an exact tier before ``*``)."""
        exact = [r for r in self.requirements if r.sector == sector and r.risk_tier == risk_tier]
        wild = [r for r in self.requirements if r.sector == sector and r.risk_tier == "*"]
        found = exact or wild
        return found[0] if found else None


# -- the attestation's predicate ---------------------------------------------------------
class SchemeRef(_Record):
    id: str = Field(min_length=1, max_length=128)
    version: int = Field(ge=1)
    digest: DIGEST  # sha256 of the scheme's canonical signed part


class AuditorRef(_Record):
    id: str = Field(pattern=AUDITOR_ID)
    jurisdiction: PARTY
    accreditation: str = Field(pattern=ACCREDITATION_ID)
    accreditation_entry: LogRef  # the grant, on the accrediting party's log


class AuditAgent(_Record):
    """The audited agent as registered (the scope of the audit)."""

    id: str = Field(pattern=AGENT_ID)
    operator: str = Field(pattern=OPERATOR_ID)
    sector: str = Field(min_length=1, max_length=64)
    risk_tier: RiskTier
    home: PARTY


class EvidenceSummary(_Record):
    """The figures of one evidence entry, as the attestation states them (they must equal
    what the entry itself says; a recogniser recomputes them from the entry)."""

    suite: str | None = None
    suite_version: str | None = None
    attempts: int | None = Field(default=None, ge=1)
    overall_asr: float | None = Field(default=None, ge=0, le=1)
    overall_upper: float | None = Field(default=None, ge=0, le=1)  # Wilson upper bound
    max_family_asr: float | None = Field(default=None, ge=0, le=1)
    over_refusal: float | None = Field(default=None, ge=0, le=1)
    drift_alert: bool | None = None
    killswitch_passed: bool | None = None
    time_to_halt_ms: float | None = Field(default=None, ge=0)


class EvidenceItem(_Record):
    """An evaluation result (or kill-switch test) already in a log: referenced, never
    copied; a recogniser proves its inclusion under a quorum-cosigned checkpoint."""

    kind: Literal["eval_result", "killswitch_test"]
    entry: LogRef
    summary: EvidenceSummary


class AuditPredicate(_Record):
    """The predicate of a ``AUDIT_PREDICATE`` Statement, version 1."""

    v: Literal[1] = 1
    scheme: SchemeRef
    auditor: AuditorRef
    agent: AuditAgent
    suites: tuple[str, ...] = Field(min_length=1, max_length=64)
    evidence: tuple[EvidenceItem, ...] = Field(min_length=1, max_length=64)
    result: Literal["PASSED", "FAILED"]
    issued: datetime
    expires: datetime

    @model_validator(mode="after")
    def _window(self) -> AuditPredicate:
        if self.expires <= self.issued:
            raise ValueError("expires must be after issued")
        return self


# -- status and decisions ----------------------------------------------------------------
class AttestationStatus(_Record):
    """The auditor (or its accrediting regulator) withdraws an attestation, version 1."""

    v: Literal[1] = 1
    op: Literal["withdraw"] = "withdraw"
    attestation: DIGEST
    agent_id: str = Field(pattern=AGENT_ID)
    reason: str = Field(min_length=1, max_length=2048)
    actor: str = Field(min_length=1, max_length=256)
    at: datetime


class RecognitionDecision(_Record):
    """A member's decision on an attestation, version 1.

    ``recognise``: in force in ``jurisdiction`` until ``valid_until`` for the agent with
    exactly these model and card digests; ``refuse``: with every failed condition;
    ``withdraw``: a recognition ends, with its grounds (``reasons``). ``automatic`` when
    the node decided under its auto-recognition setting (``actor`` is then the node).
    """

    v: Literal[1] = 1
    op: Literal["recognise", "refuse", "withdraw"]
    attestation: DIGEST
    attestation_entry: LogRef
    agent_id: str = Field(pattern=AGENT_ID)
    sector: str = Field(min_length=1, max_length=64)
    jurisdiction: PARTY  # the recognising party
    model_digest: DIGEST | None = None
    card_digest: DIGEST | None = None
    scheme: SchemeRef
    reasons: tuple[Failure, ...] = Field(default=(), max_length=64)
    automatic: bool = False
    valid_until: datetime | None = None
    actor: str = Field(min_length=1, max_length=256)
    at: datetime

    @model_validator(mode="after")
    def _shape(self) -> RecognitionDecision:
        if self.op == "recognise" and (self.valid_until is None or self.reasons):
            raise ValueError("a recognition names valid_until and no failed conditions")
        if self.op != "recognise" and not self.reasons:
            raise ValueError(f"a {self.op} lists its reasons")
        return self


class KillswitchTest(_Record):
    """A kill-switch conformance test's result, logged by the agent's home node. v1."""

    v: Literal[1] = 1
    test_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    agent_id: str = Field(pattern=AGENT_ID)
    sent_at: datetime
    halt_observed: bool
    halted_at: datetime | None = None
    time_to_halt_ms: float | None = Field(default=None, ge=0)
    halt_recorded: bool
    halt_entry: LogRef | None = None
    deadline_ms: int = Field(ge=1)
    passed: bool
    reason: str | None = Field(default=None, max_length=2048)
    actor: str = Field(min_length=1, max_length=256)
    at: datetime
