"""The audit projections: accreditations, schemes, attestations, recognitions, tests.

Each table is a projection of log entries, written by the ``apply_*`` functions in the
sequencing transaction (live) and by ``custodes registry rebuild`` and the peer mirrors
(replay: ``custodes.registry.rebuild.apply_entry``). They are registered here, on
import. An apply function trusts its record: the live service verified everything
before logging it. It never reads another table to decide (a mirror of one peer holds
that peer's log only: a recognition logged in France names an attestation logged in
the UK), so the same entries give the same rows wherever they are replayed.

Time columns are POSIX seconds (``float``). ``recognition_in_force`` is the query the
deployment gate and the counterparty checks ask, on this node's database and on every
peer mirror's (the same schema).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from custodes.audits.models import (
    ACCREDITATION_TYPE,
    ATTESTATION_STATUS_TYPE,
    AUDIT_PREDICATE,
    KILLSWITCH_TEST_TYPE,
    RECOGNITION_TYPE,
    SCHEME_TYPE,
    STATEMENT_TYPE,
    STATEMENT_V1,
    Accreditation,
    AttestationStatus,
    AuditPredicate,
    KillswitchTest,
    RecognitionDecision,
    attestation_id,
)
from custodes.audits.scheme import scheme_digest
from custodes.evals.results import DRIFT_ALERT_TYPE, RESULT_TYPE, DriftAlert, EvalResult
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, key_thumbprint
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.store import Projector
from custodes.registry.projection import load_agent
from custodes.registry.rebuild import register_entry_type, register_envelope_type
from custodes.registry.store import agent_cards, models
from custodes.store.db import metadata

__all__ = [
    "AUDIT_TABLES",
    "InForce",
    "accreditations",
    "agent_alerts",
    "agent_digests",
    "alerts_since",
    "apply_accreditation",
    "apply_attestation_status",
    "apply_killswitch_test",
    "apply_recognition",
    "apply_scheme",
    "apply_statement",
    "attestation_row",
    "attestations",
    "audit_schemes",
    "killswitch_tests",
    "parse_statement",
    "project_alert",
    "recognition_in_force",
    "recognitions",
    "recognitions_of",
]

accreditations = Table(
    "accreditations",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("jurisdiction", String(2), nullable=False),
    Column("auditor", String(128), nullable=False, index=True),
    Column("auditor_keyid", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # active | suspended | withdrawn
    Column("valid_until", Float, nullable=False),
    Column("grant", Text, nullable=False),  # the grant record, JSON
    Column("reason", Text, nullable=True),  # of the latest suspend/withdraw
    Column("entry_index", BigInteger, nullable=False),  # the grant's
    Column("updated_index", BigInteger, nullable=False),
)

audit_schemes = Table(
    "audit_schemes",
    metadata,
    Column("scheme_id", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(71), nullable=False),
    Column("document", Text, nullable=False),  # the signed document, canonical JSON
    Column("entry_index", BigInteger, nullable=False),
)

attestations = Table(
    "attestations",
    metadata,
    Column("id", String(71), primary_key=True),
    Column("agent_id", String(128), nullable=False, index=True),
    Column("auditor", String(128), nullable=False),
    Column("accreditation", String(80), nullable=False),
    Column("scheme_id", String(128), nullable=False),
    Column("scheme_version", Integer, nullable=False),
    Column("sector", String(64), nullable=False),
    Column("model_digest", String(71), nullable=True),
    Column("card_digest", String(71), nullable=True),
    Column("expires", Float, nullable=False),
    Column("status", String(16), nullable=False),  # active | withdrawn
    Column("reason", Text, nullable=True),
    Column("envelope", Text, nullable=False),  # the copy with the most signatures
    Column("signatures", Integer, nullable=False),
    Column("leaf_hash", String(64), nullable=False),  # of the first logged copy
    Column("entry_index", BigInteger, nullable=False),  # the first logged copy
    Column("updated_index", BigInteger, nullable=False),
)

recognitions = Table(
    "recognitions",
    metadata,
    Column("jurisdiction", String(2), primary_key=True),
    Column("attestation", String(71), primary_key=True),
    Column("agent_id", String(128), nullable=False, index=True),
    Column("sector", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # recognised | refused | withdrawn
    Column("model_digest", String(71), nullable=True),
    Column("card_digest", String(71), nullable=True),
    Column("valid_until", Float, nullable=True),
    Column("automatic", Boolean, nullable=False),
    Column("decision", Text, nullable=False),  # the latest decision record, JSON
    Column("entry_index", BigInteger, nullable=False),  # the latest decision's
    Column("leaf_hash", String(64), nullable=False),
)

killswitch_tests = Table(
    "killswitch_tests",
    metadata,
    Column("test_id", String(64), primary_key=True),
    Column("agent_id", String(128), nullable=False, index=True),
    Column("passed", Boolean, nullable=False),
    Column("record", Text, nullable=False),
    Column("entry_index", BigInteger, nullable=False),
)

# Drift alerts on live agents, from either a DriftAlert entry (passive drift) or an
# EvalResult whose drift summary alerts: what withdraws the recognitions of an agent.
agent_alerts = Table(
    "agent_alerts",
    metadata,
    Column("entry_index", BigInteger, primary_key=True, autoincrement=False),
    Column("agent_id", String(128), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # drift_alert | eval_drift
    Column("detected_at", Float, nullable=False),
    Column("issuer", String(256), nullable=True),
    Column("leaf_hash", String(64), nullable=False),
)

AUDIT_TABLES = (
    "accreditations",
    "audit_schemes",
    "attestations",
    "recognitions",
    "killswitch_tests",
    "agent_alerts",
)


def _ts(value: datetime) -> float:
    return value.timestamp()


# -- apply (live and replay) ---------------------------------------------------------------
def apply_accreditation(conn: Connection, index: int, record: Accreditation) -> None:
    """A grant adds (or replaces, on a re-grant) the row; the other acts set its status."""
    row = conn.execute(select(accreditations.c.id).where(accreditations.c.id == record.id)).first()
    if record.op == "grant":
        assert record.auditor_key is not None
        assert record.valid_until is not None
        values = {
            "jurisdiction": record.jurisdiction,
            "auditor": record.auditor,
            "auditor_keyid": key_thumbprint(base64.b64decode(record.auditor_key)),
            "status": "active",
            "valid_until": _ts(record.valid_until),
            "grant": record.model_dump_json(),
            "reason": None,
            "entry_index": index,
            "updated_index": index,
        }
        if row is None:
            conn.execute(insert(accreditations).values(id=record.id, **values))
        else:
            conn.execute(
                update(accreditations).where(accreditations.c.id == record.id).values(**values)
            )
        return
    if row is None:  # the service refuses this; a replay of such a log ignores it
        return
    status = {"suspend": "suspended", "reinstate": "active", "withdraw": "withdrawn"}[record.op]
    conn.execute(
        update(accreditations)
        .where(accreditations.c.id == record.id)
        .values(status=status, reason=record.reason, updated_index=index)
    )


def apply_scheme(conn: Connection, index: int, payload: bytes) -> None:
    """Store one verified scheme version (the signed document is the payload)."""
    document = orjson.loads(payload)
    signed = document["signed"]
    digest = scheme_digest(signed)
    key = (signed["id"], int(signed["version"]))
    seen = conn.execute(
        select(audit_schemes.c.digest).where(
            audit_schemes.c.scheme_id == key[0], audit_schemes.c.version == key[1]
        )
    ).first()
    if seen is not None:
        return
    conn.execute(
        insert(audit_schemes).values(
            scheme_id=key[0],
            version=key[1],
            digest=digest,
            document=canonical_dumps(document).decode(),
            entry_index=index,
        )
    )


def parse_statement(payload: bytes) -> tuple[dict[str, Any], str]:
    """The Statement's JSON and its predicateType (no validation beyond the shape)."""
    statement = orjson.loads(payload)
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_V1:
        raise ValueError("not an in-toto Statement v1")
    return statement, str(statement.get("predicateType"))


def _subject_digest(statement: dict[str, Any], prefix: str) -> str | None:
    for subject in statement.get("subject", []):
        name = str(subject.get("name", ""))
        if name.startswith(prefix):
            value = subject.get("digest", {}).get("sha256")
            return None if value is None else f"sha256:{value}"
    return None


def apply_statement(conn: Connection, index: int, envelope: Envelope) -> None:
    """An audit attestation (first copy or a countersigned one); other predicates (the
    VSAs a recognition issues) are logged but projected nowhere."""
    statement, predicate_type = parse_statement(envelope.payload)
    if predicate_type != AUDIT_PREDICATE:
        return
    predicate = AuditPredicate.model_validate(statement["predicate"])
    aid = attestation_id(envelope.payload)
    data = envelope.to_bytes()
    row = conn.execute(select(attestations.c.signatures).where(attestations.c.id == aid)).first()
    if row is not None:
        if len(envelope.signatures) > row.signatures:
            conn.execute(
                update(attestations)
                .where(attestations.c.id == aid)
                .values(
                    envelope=data.decode(),
                    signatures=len(envelope.signatures),
                    updated_index=index,
                )
            )
        return
    conn.execute(
        insert(attestations).values(
            id=aid,
            agent_id=predicate.agent.id,
            auditor=predicate.auditor.id,
            accreditation=predicate.auditor.accreditation,
            scheme_id=predicate.scheme.id,
            scheme_version=predicate.scheme.version,
            sector=predicate.agent.sector,
            model_digest=_subject_digest(statement, "model:"),
            card_digest=_subject_digest(statement, "agentcard:"),
            expires=_ts(predicate.expires),
            status="active",
            reason=None,
            envelope=data.decode(),
            signatures=len(envelope.signatures),
            leaf_hash=leaf_hash(data).hex(),
            entry_index=index,
            updated_index=index,
        )
    )


def apply_attestation_status(conn: Connection, index: int, record: AttestationStatus) -> None:
    conn.execute(
        update(attestations)
        .where(attestations.c.id == record.attestation)
        .values(status="withdrawn", reason=record.reason, updated_index=index)
    )


def apply_recognition(
    conn: Connection, index: int, record: RecognitionDecision, leaf: bytes
) -> None:
    """The latest decision of a party on an attestation is its standing there."""
    status = {"recognise": "recognised", "refuse": "refused", "withdraw": "withdrawn"}[record.op]
    values = {
        "agent_id": record.agent_id,
        "sector": record.sector,
        "status": status,
        "model_digest": record.model_digest,
        "card_digest": record.card_digest,
        "valid_until": None if record.valid_until is None else _ts(record.valid_until),
        "automatic": record.automatic,
        "decision": record.model_dump_json(),
        "entry_index": index,
        "leaf_hash": leaf.hex(),
    }
    where = (recognitions.c.jurisdiction == record.jurisdiction) & (
        recognitions.c.attestation == record.attestation
    )
    if conn.execute(select(recognitions.c.status).where(where)).first() is None:
        conn.execute(
            insert(recognitions).values(
                jurisdiction=record.jurisdiction, attestation=record.attestation, **values
            )
        )
    else:
        conn.execute(update(recognitions).where(where).values(**values))


def apply_killswitch_test(conn: Connection, index: int, record: KillswitchTest) -> None:
    if conn.execute(
        select(killswitch_tests.c.test_id).where(killswitch_tests.c.test_id == record.test_id)
    ).first():
        return
    conn.execute(
        insert(killswitch_tests).values(
            test_id=record.test_id,
            agent_id=record.agent_id,
            passed=record.passed,
            record=record.model_dump_json(),
            entry_index=index,
        )
    )


def project_alert(envelope: Envelope) -> Projector | None:
    """The projector that records ``envelope`` as a drift alert on an agent, if it is one
    (a DriftAlert with ``alert``, or an EvalResult naming an agent whose drift alerts)."""
    alert = _alert_of(envelope)
    if alert is None:
        return None
    leaf = leaf_hash(envelope.to_bytes()).hex()

    def project(conn: Connection, index: int) -> None:
        conn.execute(insert(agent_alerts).values(entry_index=index, leaf_hash=leaf, **alert))

    return project


def _alert_of(envelope: Envelope) -> dict[str, Any] | None:
    if envelope.payload_type == DRIFT_ALERT_TYPE:
        drift = DriftAlert.model_validate_json(envelope.payload)
        if not drift.alert:
            return None
        return {
            "agent_id": drift.agent_id,
            "kind": "drift_alert",
            "detected_at": _ts(drift.detected_at),
            "issuer": drift.issuer,
        }
    if envelope.payload_type == RESULT_TYPE:
        result = EvalResult.model_validate_json(envelope.payload)
        if result.agent_id is None or result.drift is None or not result.drift.alert:
            return None
        return {
            "agent_id": result.agent_id,
            "kind": "eval_drift",
            "detected_at": _ts(result.finished_at),
            "issuer": result.issuer,
        }
    return None


def _alert_entry(conn: Connection, index: int, envelope: Envelope) -> None:
    project = project_alert(envelope)
    if project is not None:
        project(conn, index)


def alerts_since(conn: Connection, agent_id: str, since: float) -> list[dict[str, Any]]:
    """Drift alerts on ``agent_id`` detected at or after ``since`` (POSIX seconds)."""
    rows = conn.execute(
        select(agent_alerts)
        .where(agent_alerts.c.agent_id == agent_id, agent_alerts.c.detected_at >= since)
        .order_by(agent_alerts.c.entry_index)
    ).all()
    return [dict(r._mapping) for r in rows]


def _recognition_entry(conn: Connection, index: int, envelope: Envelope) -> None:
    record = RecognitionDecision.model_validate_json(envelope.payload)
    apply_recognition(conn, index, record, leaf_hash(envelope.to_bytes()))


register_entry_type(
    ACCREDITATION_TYPE,
    lambda c, i, p: apply_accreditation(c, i, Accreditation.model_validate_json(p)),
    ("accreditations",),
)
register_entry_type(SCHEME_TYPE, apply_scheme, ("audit_schemes",))
register_envelope_type(STATEMENT_TYPE, apply_statement, ("attestations",))
register_entry_type(
    ATTESTATION_STATUS_TYPE,
    lambda c, i, p: apply_attestation_status(c, i, AttestationStatus.model_validate_json(p)),
    (),
)
register_envelope_type(RECOGNITION_TYPE, _recognition_entry, ("recognitions",))
register_envelope_type(DRIFT_ALERT_TYPE, _alert_entry, ("agent_alerts",))
register_envelope_type(RESULT_TYPE, _alert_entry, ("agent_alerts",))
register_entry_type(
    KILLSWITCH_TEST_TYPE,
    lambda c, i, p: apply_killswitch_test(c, i, KillswitchTest.model_validate_json(p)),
    ("killswitch_tests",),
)


# -- queries -----------------------------------------------------------------------------
@dataclass(frozen=True)
class InForce:
    """A recognition in force: who recognised which attestation, until when."""

    jurisdiction: str
    attestation: str
    agent_id: str
    sector: str
    model_digest: str | None
    card_digest: str | None
    valid_until: float
    automatic: bool
    entry_index: int
    leaf_hash: str


def recognition_in_force(
    conn: Connection,
    agent_id: str,
    jurisdiction: str,
    *,
    model_digest: str | None,
    card_digest: str | None,
    now: float,
) -> InForce | None:
    """The recognition in ``jurisdiction`` of an attestation for ``agent_id`` with exactly
    these digests, not withdrawn and not expired at ``now`` (the longest-lived one)."""
    rows = conn.execute(
        select(recognitions).where(
            recognitions.c.agent_id == agent_id,
            recognitions.c.jurisdiction == jurisdiction,
            recognitions.c.status == "recognised",
            recognitions.c.valid_until > now,
        )
    ).all()
    best: InForce | None = None
    for r in rows:
        if r.model_digest != model_digest or r.card_digest != card_digest:
            continue
        if best is None or r.valid_until > best.valid_until:
            best = InForce(
                r.jurisdiction,
                r.attestation,
                r.agent_id,
                r.sector,
                r.model_digest,
                r.card_digest,
                r.valid_until,
                r.automatic,
                r.entry_index,
                r.leaf_hash,
            )
    return best


def recognitions_of(conn: Connection, agent_id: str) -> list[dict[str, Any]]:
    """Every party's latest decision on every attestation of ``agent_id``."""
    rows = conn.execute(
        select(recognitions)
        .where(recognitions.c.agent_id == agent_id)
        .order_by(recognitions.c.entry_index)
    ).all()
    return [dict(r._mapping) for r in rows]


def attestation_row(conn: Connection, aid: str) -> dict[str, Any] | None:
    row = conn.execute(select(attestations).where(attestations.c.id == aid)).first()
    return None if row is None else dict(row._mapping)


def agent_digests(conn: Connection, agent_id: str) -> tuple[str | None, str | None]:
    """The agent's current model digest (its model's record) and its AgentCard digest."""
    agent = load_agent(conn, agent_id)
    model_digest = None
    if agent.model is not None:
        row = conn.execute(select(models.c.record).where(models.c.id == agent.model)).first()
        if row is not None:
            model_digest = str(orjson.loads(row.record)["digest"])
    card = conn.execute(
        select(agent_cards.c.digest).where(agent_cards.c.agent_id == agent_id)
    ).first()
    return model_digest, None if card is None else str(card.digest)
