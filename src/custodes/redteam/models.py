"""The red-teaming repository's records (DESIGN.md 4.6, docs/design/0029).

Every step of a disclosure's life is a signed, logged entry: a ``RedteamAct``
(``REDTEAM_TYPE``) in a DSSE envelope signed by the party acting. The log is public, and
a disclosure under TLP:GREEN, AMBER or RED must not be, so an act carries only its
public metadata (which step, which disclosure, under which TLP, who, when) and a salted
commitment to its body, in the manner of the decision commitments
(``custodes.ledger.commitments``)::

    content = "sha256:" + hex(SHA-256(JCS(["custodes.redteam.v1", salt, body])))

The body (``ReportBody``, ``TriageBody``, ``DiscloseBody``, ``RelabelBody``,
``StatusBody``, ``SummaryBody``) and its salt travel beside the envelope
(``ActOpening``), are checked against the commitment, and stay in the node's
``redteam_openings`` table; what the body says reaches the entitled parties as STIX 2.1
objects (``custodes.redteam.stix``) over TAXII 2.1 and the federation's deliveries.

The steps::

    report    a researcher (or auditor) reports: the vulnerability, its AVID-style
              fields, ATLAS and OWASP ids, and the attack as a reproducible probe;
    triage    a regulator of the origin node sets the severity and the affected agents
              (found by model, version and skill, alliance-wide);
    disclose  the regulator discloses under a TLP to named recipients, with an embargo
              date and the course of action;
    relabel   the regulator changes the TLP or the recipients;
    status    per affected agent, at the agent's home node: ``exposed`` (the node, when
              the disclosure arrives), ``mitigated`` or ``patched`` (the agent's
              operator), ``verified`` or ``regressed`` (a re-test's signed result);
    summary   after the embargo, a TLP:CLEAR public summary (the regulator).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from custodes.audits.models import LogRef
from custodes.ledger.canonical import canonical_dumps
from custodes.registry.models import AGENT_ID

__all__ = [
    "ACT_BODIES",
    "DISCLOSURE_ID",
    "EXPOSURE_STATUSES",
    "REDTEAM_TYPE",
    "STAGES",
    "TLP",
    "TLPS",
    "ActOpening",
    "Affected",
    "Affects",
    "DiscloseBody",
    "ExposureStatus",
    "Metric",
    "ProbeSpec",
    "ProbeTurn",
    "ProblemType",
    "RedteamAct",
    "RelabelBody",
    "ReportBody",
    "Severity",
    "Stage",
    "StatusBody",
    "SummaryBody",
    "ToolOutput",
    "TriageBody",
    "act_commitment",
    "body_model",
]

REDTEAM_TYPE = "application/vnd.custodes.redteam+json"
_TAG = "custodes.redteam.v1"

_UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
# A disclosure is named by its STIX vulnerability's id (a UUIDv4, as STIX asks of SDOs).
DISCLOSURE_ID = rf"^vulnerability--{_UUID4}$"

TLP = Literal["clear", "green", "amber", "amber+strict", "red"]
TLPS: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")
Severity = Literal["low", "medium", "high", "critical"]
Stage = Literal["reported", "triaged", "disclosed"]
STAGES: tuple[str, ...] = ("reported", "triaged", "disclosed")
ExposureStatus = Literal["exposed", "mitigated", "patched", "verified", "regressed"]
EXPOSURE_STATUSES: tuple[str, ...] = ("exposed", "mitigated", "patched", "verified", "regressed")

ATLAS_ID = Annotated[str, Field(pattern=r"^AML\.(T\d{4}(\.\d{3})?|M\d{4}|TA\d{4})$")]
OWASP_ID = Annotated[str, Field(pattern=r"^(LLM(0[1-9]|10):2025|ASI(0[1-9]|10))$")]
PARTY = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
# A recipient: a party code (GREEN/AMBER/AMBER+STRICT) or, under TLP:RED, a principal
# qualified by its party: "GB/regulator:gb-aisi".
RECIPIENT = Annotated[
    str,
    Field(
        pattern=r"^([A-Z]{2}|[A-Z]{2}/(regulator|auditor|operator|researcher):[a-z0-9][a-z0-9-]{0,62})$"
    ),
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=20_000)


# -- the probe ---------------------------------------------------------------------------
class ProbeTurn(_Record):
    """One earlier turn of the attack's conversation, replayed before ``prompt``."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(max_length=20_000)


class ToolOutput(_Record):
    """A tool's output the attack plants (an indirect prompt injection)."""

    tool: str = Field(min_length=1, max_length=128)
    output: str = Field(max_length=20_000)


class ProbeSpec(_Record):
    """The attack, reproducible: what is sent, and what counts as it succeeding.

    ``prompt`` is the final user message; ``turns`` the conversation before it;
    ``tool_outputs`` what planted tools return; ``goal`` the behaviour the attack
    elicits, in words a judge reads; ``forbidden_tool`` (agentic probes) the tool whose
    call is the harm.
    """

    prompt: str = Field(min_length=1, max_length=20_000)
    goal: str = Field(min_length=1, max_length=2_000)
    turns: tuple[ProbeTurn, ...] = Field(default=(), max_length=32)
    tool_outputs: tuple[ToolOutput, ...] = Field(default=(), max_length=16)
    tools: tuple[str, ...] = Field(default=(), max_length=32)
    forbidden_tool: str | None = Field(default=None, min_length=1, max_length=128)
    harm_category: str | None = Field(default=None, min_length=1, max_length=64)
    attempts: int = Field(default=5, ge=1, le=100)  # how many times a re-test sends it

    @model_validator(mode="after")
    def _agentic(self) -> ProbeSpec:
        if self.forbidden_tool is not None and self.forbidden_tool not in self.tools:
            raise ValueError("forbidden_tool must be one of the probe's tools")
        return self


# -- AVID-style fields -----------------------------------------------------------------
class Affects(_Record):
    """What the vulnerability affects (AVID ``affects``): models by registry id or name,
    their versions (empty: every version), agent skills, and agents named outright."""

    models: tuple[str, ...] = Field(default=(), max_length=64)
    versions: tuple[str, ...] = Field(default=(), max_length=64)
    skills: tuple[str, ...] = Field(default=(), max_length=64)
    agents: tuple[Annotated[str, Field(pattern=AGENT_ID)], ...] = Field(default=(), max_length=256)
    developers: tuple[str, ...] = Field(default=(), max_length=16)

    @model_validator(mode="after")
    def _something(self) -> Affects:
        if not (self.models or self.skills or self.agents):
            raise ValueError("affects names at least one model, skill or agent")
        return self


class ProblemType(_Record):
    """AVID ``problemtype``."""

    classof: Literal[
        "LLM Evaluation",
        "ATLAS Case Study",
        "CVE Entry",
        "AIID Incident",
        "Third-party Report",
        "Undefined",
    ] = "LLM Evaluation"
    type: Literal["Issue", "Advisory", "Measurement", "Detection"] = "Issue"
    description: str = Field(min_length=1, max_length=2_000)


class Metric(_Record):
    """AVID ``metrics[]``: a measured figure, e.g. the reporter's observed ASR."""

    name: str = Field(min_length=1, max_length=128)
    detection_method: Literal["Significance Test", "Static Threshold"] = "Static Threshold"
    value: float
    successes: int | None = Field(default=None, ge=0)
    trials: int | None = Field(default=None, ge=1)


class Affected(_Record):
    """One affected agent as triage found it, with what matched."""

    agent_id: str = Field(pattern=AGENT_ID)
    home: PARTY
    operator: str = Field(min_length=1, max_length=128)
    model: str | None = Field(default=None, max_length=128)
    model_version: str | None = Field(default=None, max_length=64)
    matched: tuple[Literal["model", "version", "skill", "named"], ...] = ()


# -- bodies ------------------------------------------------------------------------------
class ReportBody(_Record):
    """What a reporter discloses (the ``report`` step). The TLP and recipients are the
    reporter's wish; the regulator's ``disclose`` decides."""

    v: Literal[1] = 1
    title: str = Field(min_length=1, max_length=256)
    description: str = Field(min_length=1, max_length=8_000)
    affects: Affects
    problemtype: ProblemType
    atlas: tuple[ATLAS_ID, ...] = Field(min_length=1, max_length=16)
    owasp: tuple[OWASP_ID, ...] = Field(default=(), max_length=16)
    probe: ProbeSpec
    metrics: tuple[Metric, ...] = Field(default=(), max_length=16)
    evidence: str | None = Field(default=None, max_length=8_000)  # transcript excerpt, log
    severity: Severity | None = None  # the reporter's suggestion
    tlp: TLP = "amber"
    recipients: tuple[RECIPIENT, ...] = Field(default=(), max_length=64)
    reported_at: datetime


class TriageBody(_Record):
    v: Literal[1] = 1
    severity: Severity
    criteria: Affects  # what was searched for
    affected: tuple[Affected, ...] = Field(default=(), max_length=1024)
    note: str | None = Field(default=None, max_length=4_000)


class DiscloseBody(_Record):
    """The regulator discloses: under ``tlp`` to ``recipients`` (party codes; under RED,
    qualified principals), embargoed until ``embargo_until``, with the course of action."""

    v: Literal[1] = 1
    tlp: TLP
    recipients: tuple[RECIPIENT, ...] = Field(default=(), max_length=64)
    embargo_until: datetime
    course_of_action: str = Field(min_length=1, max_length=8_000)
    mitigations: tuple[ATLAS_ID, ...] = Field(default=(), max_length=16)  # AML.M00xx


class RelabelBody(_Record):
    v: Literal[1] = 1
    tlp: TLP
    recipients: tuple[RECIPIENT, ...] = Field(default=(), max_length=64)
    reason: str = Field(min_length=1, max_length=2_000)


class StatusBody(_Record):
    """One affected agent's status. ``verified`` and ``regressed`` cite the re-test: the
    signed ``EvalResult`` entry of the ``redteam`` suite that ran this disclosure's probe
    against the agent (``evidence``)."""

    v: Literal[1] = 1
    agent_id: str = Field(pattern=AGENT_ID)
    status: ExposureStatus
    evidence: LogRef | None = None
    note: str | None = Field(default=None, max_length=4_000)

    @model_validator(mode="after")
    def _evidence(self) -> StatusBody:
        if self.status in ("verified", "regressed") and self.evidence is None:
            raise ValueError(f"a {self.status} status cites the re-test's result (evidence)")
        return self


class SummaryBody(_Record):
    """The public summary released after the embargo (always TLP:CLEAR)."""

    v: Literal[1] = 1
    title: str = Field(min_length=1, max_length=256)
    description: str = Field(min_length=1, max_length=8_000)


ACT_BODIES: dict[str, type[BaseModel]] = {
    "report": ReportBody,
    "triage": TriageBody,
    "disclose": DiscloseBody,
    "relabel": RelabelBody,
    "status": StatusBody,
    "summary": SummaryBody,
}


def body_model(op: str) -> type[BaseModel]:
    return ACT_BODIES[op]


# -- the logged act ----------------------------------------------------------------------
class RedteamAct(_Record):
    """What the log holds of one step (see the module docstring). Version 1.

    ``tlp`` is the TLP the body is shared under (a ``summary`` is always ``clear``);
    ``actor`` the principal that signed (``node:<origin>`` for the node's own acts).
    """

    v: Literal[1] = 1
    op: Literal["report", "triage", "disclose", "relabel", "status", "summary"]
    disclosure: str = Field(pattern=DISCLOSURE_ID)
    tlp: TLP
    content: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    actor: str = Field(min_length=1, max_length=256)
    at: datetime

    @model_validator(mode="after")
    def _summary_clear(self) -> RedteamAct:
        if self.op == "summary" and self.tlp != "clear":
            raise ValueError("a public summary is TLP:CLEAR")
        return self


class ActOpening(_Record):
    """The clear body behind an act's ``content`` and its salt (base64url, >= 128 bits)."""

    salt: str = Field(min_length=22, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    body: dict[str, Any]


def act_commitment(salt: str, body: dict[str, Any]) -> str:
    """``content`` for ``body`` under ``salt``: SHA-256 of JCS([tag, salt, body])."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{22,128}", salt):
        raise ValueError("the salt is base64url without padding, at least 128 bits")
    tagged = b'["%s","%s",%s]' % (_TAG.encode(), salt.encode(), canonical_dumps(body))
    return "sha256:" + hashlib.sha256(tagged).hexdigest()
