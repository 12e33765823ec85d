"""AuditService: accreditations, the scheme, attestations and decisions logged on a node.

Every write is checked before anything is logged, and a refusal lists every failed
condition (``detail.failures``: ``[{"condition", "reason"}]``) so a person, or the CLI,
can act on it:

- an accreditation is signed by a regulator of this node's jurisdiction and names it;
  suspend, reinstate and withdraw act on a grant logged here;
- a scheme version is signed by a threshold of the roster's root keys and follows the
  version in force (``custodes.audits.scheme.verify_scheme``); the node logs it with its
  entry key;
- an attestation is signed by an auditor registered here whose key the accreditation
  grant names, and must be recognisable but for what may still come (its evidence's
  finality, countersignatures): ``check_recognition`` decides;
- a countersignature is a member regulator's (of this party) over the attestation's PAE;
- a recognition runs the same check at this node, then logs the regulator's decision
  and a SLSA verification summary signed by the node.

Where the evidence, the accreditation, the agent and the alerts are read (this node's
database, the peers' mirrors) is the adapter's business: ``CaseSource``
(``custodes.federation.audit_cases``).
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, select

from custodes.audits.attestation import countersigning_parties, open_attestation
from custodes.audits.models import (
    ACCREDITATION_TYPE,
    ATTESTATION_STATUS_TYPE,
    RECOGNITION_TYPE,
    SCHEME_TYPE,
    STATEMENT_TYPE,
    Accreditation,
    AttestationStatus,
    Failure,
    LogRef,
    RecognitionDecision,
    SchemeBody,
)
from custodes.audits.recognition import RecognitionCase, check_recognition
from custodes.audits.scheme import SignedScheme, verify_scheme
from custodes.audits.store import (
    accreditations,
    apply_accreditation,
    apply_attestation_status,
    apply_recognition,
    apply_scheme,
    apply_statement,
    attestation_row,
    audit_schemes,
    recognitions,
)
from custodes.audits.vsa import build_vsa, verifier_id
from custodes.errors import AuthError, BadRequest, CustodesError, NotFound
from custodes.federation.roster import SignedRoster
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, EnvelopeSigner, Signature, sign_envelope
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.service import LogService
from custodes.registry.principals import Principal
from custodes.registry.service import RegistryService
from custodes.store.db import read_tx

__all__ = [
    "AT_LOGGING",
    "AuditRefused",
    "AuditService",
    "CaseSource",
    "FoundAttestation",
    "failures_json",
]

# Conditions an attestation may still fail when it is logged: they come later (its
# evidence's checkpoints become final, members countersign it) or concern the
# recogniser, not the attestation (a partner's node logs what members recognise).
AT_LOGGING = frozenset({"evidence_inclusion", "countersignatures", "partner"})


_SCHEME_TTL = 1.0  # seconds a worker keeps the scheme in force before reading it again
_SIGNATURE_CODES = frozenset({"bad_signature", "signer_mismatch", "unknown_signer"})


def failures_json(failures: Iterable[Failure]) -> list[dict[str, str]]:
    return [{"condition": f.condition, "reason": f.reason} for f in failures]


class AuditRefused(BadRequest):
    """A refused audit write: ``detail.failures`` lists every failed condition."""

    code = "not_recognisable"
    status = 422

    def __init__(
        self,
        message: str,
        failures: Sequence[Failure],
        *,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(
            message + " " + "; ".join(f"{f.condition}: {f.reason}" for f in failures),
            code=code,
            status=status,
            detail={"failures": failures_json(failures)},
        )
        self.failures = list(failures)


def _refuse(condition: str, reason: str, *, code: str, status: int = 422) -> AuditRefused:
    return AuditRefused(
        reason, [Failure(condition=condition, reason=reason)], code=code, status=status
    )


@dataclass(frozen=True)
class FoundAttestation:
    """An attestation as logged somewhere in the alliance: the copy with the most
    signatures, where its first copy was logged, and its status (withdrawn anywhere
    is withdrawn)."""

    id: str
    envelope: Envelope
    entry: LogRef
    party: str  # the party on whose log ``entry`` is
    agent_id: str
    status: str
    expires: float


class CaseSource(Protocol):
    """Reads what a recognition rests on, wherever it is logged (the adapter)."""

    def attestation(self, aid: str) -> FoundAttestation | None: ...

    def attestations(self) -> list[FoundAttestation]: ...

    def accreditation(self, acc_id: str) -> tuple[Accreditation, str] | None: ...

    def case(
        self,
        envelope: Envelope,
        *,
        scheme: SignedScheme,
        countersignatures_needed: int | None,
        now: datetime,
    ) -> RecognitionCase: ...

    def grounds(self, row: dict[str, Any], found: FoundAttestation | None) -> list[Failure]: ...

    def agent_known(self, agent_id: str) -> bool: ...


def _parse(model: type[BaseModel], payload: bytes, what: str) -> Any:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]]
        raise BadRequest(
            f"not a valid {what}: " + "; ".join(problems),
            code="invalid_payload",
            status=422,
            detail={"problems": problems},
        ) from None


def _actor(actor: str, principal: Principal) -> None:
    if actor != principal.id:
        raise AuthError(
            f"the record names actor {actor} but the token is {principal.id}'s",
            code="actor_mismatch",
            status=403,
        )


class AuditService:
    def __init__(
        self,
        engine: Engine,
        log: LogService,
        registry: RegistryService,
        entry_signer: EnvelopeSigner,
        *,
        jurisdiction: str,
        origin: str,
        roster: Callable[[], SignedRoster | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self._log, self._registry = engine, log, registry
        self._signer = entry_signer
        self.jurisdiction, self.origin = jurisdiction, origin
        self._roster = roster
        self.clock = clock
        self.cases: CaseSource | None = None
        self._lock = threading.Lock()  # one decision at a time on this node
        # The latest failures of the automatic check, by attestation (not logged).
        self.pending: dict[str, list[Failure]] = {}
        self.pending_agents: dict[str, str] = {}  # the agent of each pending attestation
        self._scheme: tuple[SignedScheme | None, float] | None = None

    # -- shared ---------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    @property
    def in_alliance(self) -> bool:
        return self._roster() is not None

    def roster(self) -> SignedRoster:
        roster = self._roster()
        if roster is None:
            raise BadRequest(
                "this node has no alliance roster yet; recognition needs one "
                "(CUSTODES_ROSTER_FILE)",
                code="no_roster",
                status=409,
            )
        return roster

    def _source(self) -> CaseSource:
        if self.cases is None:
            raise BadRequest(
                "this node cannot read the alliance's logs yet; try again shortly",
                code="not_ready",
                status=503,
            )
        return self.cases

    def _regulator_here(self, principal: Principal) -> None:
        if principal.role != "regulator" or principal.jurisdiction != self.jurisdiction:
            raise _refuse(
                "role",
                f"only a regulator of {self.jurisdiction} acts here; {principal.id} is "
                f"{principal.role} of {principal.jurisdiction}",
                code="wrong_role",
                status=403,
            )

    def _party_has_say(self, scheme: SignedScheme | None) -> None:
        party = self.roster().body.party(self.jurisdiction)
        status = None if party is None else party.status
        if status == "member":
            return
        if status == "partner" and scheme is not None and scheme.body.partners_recognise:
            return
        raise _refuse(
            "partner",
            f"{self.jurisdiction} is {status or 'not a party'} of the alliance and the common "
            "scheme gives it no say on recognition; a member's regulator decides",
            code="partner_no_say",
            status=403,
        )

    # -- the scheme -----------------------------------------------------------------
    def scheme(self) -> SignedScheme | None:
        """The newest scheme version logged here (verified before it was logged), read
        at most once a second (another worker may log a newer one)."""
        now = time.monotonic()
        cached = self._scheme
        if cached is not None and now - cached[1] < _SCHEME_TTL:
            return cached[0]
        scheme = self._read_scheme()
        self._scheme = (scheme, now)
        return scheme

    def _read_scheme(self) -> SignedScheme | None:
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(audit_schemes.c.document)
                .order_by(audit_schemes.c.version.desc(), audit_schemes.c.entry_index.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        document = orjson.loads(row.document)
        return SignedScheme(document, SchemeBody.model_validate(document["signed"]))

    def require_scheme(self) -> SignedScheme:
        scheme = self.scheme()
        if scheme is None:
            raise _refuse(
                "scheme",
                "no common scheme is in force on this node; a member applies one "
                "(custodes audit scheme apply)",
                code="no_scheme",
                status=409,
            )
        return scheme

    def submit_scheme(self, document: Any, principal: Principal) -> dict[str, Any]:
        """Log a newer scheme version a regulator of this node hands in."""
        self._regulator_here(principal)
        return self.adopt_scheme(document, strict=True)

    def adopt_scheme(self, document: Any, *, strict: bool = False) -> dict[str, Any]:
        """Verify ``document`` against the roster and the version in force; log it.

        ``strict`` (a person's request): the same version again is a 409; otherwise (the
        watch adopting a mirror's) nothing is logged and ``index`` is None."""
        previous = self.scheme()
        verified = verify_scheme(document, self.roster(), now=self.now(), previous=previous)
        if previous is not None and verified.version == previous.version:
            if strict:
                raise BadRequest(
                    f"scheme {verified.id} version {verified.version} is already in force here",
                    code="scheme_in_force",
                    status=409,
                )
            return {"index": None, "version": verified.version}
        payload = verified.to_bytes()
        envelope = sign_envelope(SCHEME_TYPE, payload, [self._signer])
        index = self._log.append_own(envelope, lambda c, i: apply_scheme(c, i, payload))
        self._scheme = None  # read the version just logged
        return {"index": index, "version": verified.version, "digest": verified.digest()}

    # -- accreditations -------------------------------------------------------------
    def submit_accreditation(self, obj: Any, principal: Principal) -> dict[str, Any]:
        self._regulator_here(principal)
        envelope = self._signed(obj, ACCREDITATION_TYPE, principal)
        record: Accreditation = _parse(Accreditation, envelope.payload, "accreditation")
        _actor(record.actor, principal)
        if record.jurisdiction != self.jurisdiction:
            raise _refuse(
                "jurisdiction",
                f"this is the {self.jurisdiction} node: it logs {self.jurisdiction}'s "
                f"accreditations, not {record.jurisdiction}'s",
                code="wrong_jurisdiction",
                status=422,
            )

        def project(conn: Connection, index: int) -> None:
            _check_transition(conn, record)
            apply_accreditation(conn, index, record)

        return {"index": self._log.append_own(envelope, project), "id": record.id}

    # -- attestations ---------------------------------------------------------------
    def submit_attestation(self, obj: Any, principal: Principal) -> dict[str, Any]:
        """Log an auditor's attestation that could be recognised (but for finality and
        countersignatures, which come later); refuse, listing why, one that could not."""
        if principal.role != "auditor":
            raise _refuse(
                "role",
                f"attestations are signed by an accredited auditor; {principal.id} is a "
                f"{principal.role}",
                code="wrong_role",
                status=403,
            )
        envelope = self._signed(obj, STATEMENT_TYPE, principal)
        opened = open_attestation(envelope)
        predicate = opened.predicate
        if predicate.auditor.id != principal.id:
            raise _refuse(
                "signature",
                f"the attestation names auditor {predicate.auditor.id} but is sent by "
                f"{principal.id}",
                code="actor_mismatch",
                status=403,
            )
        found = self._source().accreditation(predicate.auditor.accreditation)
        key = None if found is None else found[0].auditor_key
        if key is not None and base64.b64encode(self._registry_key(principal)).decode() != key:
            raise _refuse(
                "signature",
                f"{principal.id}'s key registered here is not the key accreditation "
                f"{predicate.auditor.accreditation} grants",
                code="key_mismatch",
                status=403,
            )
        if not self._source().agent_known(predicate.agent.id):
            raise NotFound(
                f"no agent {predicate.agent.id} is registered at its home (or mirrored here)",
                code="unknown_agent",
            )
        failures = self._check(envelope, None, ignore=AT_LOGGING)
        if failures:
            raise AuditRefused(
                "this attestation could not be recognised:", failures, code="attestation_refused"
            )
        with read_tx(self._engine) as conn:
            if attestation_row(conn, opened.id) is not None:
                raise BadRequest(
                    f"attestation {opened.id} is already logged here",
                    code="attestation_exists",
                    status=409,
                )
        index = self._log.append_own(envelope, lambda c, i: apply_statement(c, i, envelope))
        return {"index": index, "id": opened.id}

    def _signed(self, obj: Any, payload_type: str, principal: Principal) -> Envelope:
        """The envelope, signed by ``principal``'s registered key; a signature that does
        not verify (a payload changed after signing) is refused as a failed condition."""
        try:
            return self._registry.signed_by(obj, payload_type, principal)
        except CustodesError as exc:
            if exc.code not in _SIGNATURE_CODES:
                raise
            raise AuditRefused(
                "the envelope's signature does not verify:",
                [Failure(condition="signature", reason=exc.message)],
                code="attestation_refused" if payload_type == STATEMENT_TYPE else exc.code,
                status=exc.status,
            ) from None

    def _registry_key(self, principal: Principal) -> bytes:
        key = self._log.signers.public_key(principal.keyid)
        assert key is not None  # signed_by verified the envelope with it
        return key

    def _check(
        self, envelope: Envelope, k: int | None, *, ignore: frozenset[str] = frozenset()
    ) -> list[Failure]:
        self.roster()  # a node outside an alliance recognises nothing: 409 no_roster
        case = self._source().case(
            envelope, scheme=self.require_scheme(), countersignatures_needed=k, now=self.now()
        )
        return [f for f in check_recognition(case) if f.condition not in ignore]

    def countersign(self, aid: str, body: Any, principal: Principal) -> dict[str, Any]:
        """Add a member regulator's signature over the attestation's PAE and log the copy."""
        self._regulator_here(principal)
        self._party_has_say(None)
        found = self._found(aid)
        signature = _signature(body)
        if signature.keyid != principal.keyid:
            raise _refuse(
                "signature",
                f"the countersignature's keyid must be {principal.id}'s registered key",
                code="signer_mismatch",
                status=403,
            )
        envelope = found.envelope
        if any(s.keyid == signature.keyid for s in envelope.signatures):
            raise BadRequest(
                f"{principal.id} already countersigned attestation {aid}",
                code="already_countersigned",
                status=409,
            )
        signed = Envelope(
            envelope.payload_type, envelope.payload, (*envelope.signatures, signature)
        )
        alone = Envelope(envelope.payload_type, envelope.payload, (signature,))
        if principal.keyid not in self._log.signers.verify(alone):
            raise _refuse(
                "signature",
                "the countersignature does not verify over the attestation's PAE under "
                f"{principal.id}'s key",
                code="bad_signature",
                status=422,
            )
        roster = self.roster()
        if self.jurisdiction not in countersigning_parties(
            Envelope(envelope.payload_type, envelope.payload, (signature,)), roster
        ):
            raise _refuse(
                "countersignatures",
                f"{principal.id}'s key is not a regulator key {self.jurisdiction} vouches "
                "for on the roster in force, so its signature would count for nothing",
                code="not_a_roster_regulator",
                status=403,
            )
        index = self._log.append_own(signed, lambda c, i: apply_statement(c, i, signed))
        return {"index": index, "id": aid, "signatures": len(signed.signatures)}

    def withdraw_attestation(self, aid: str, obj: Any, principal: Principal) -> dict[str, Any]:
        """Log the auditor's (or its accrediting regulator's) withdrawal of an attestation."""
        envelope = self._signed(obj, ATTESTATION_STATUS_TYPE, principal)
        record: AttestationStatus = _parse(
            AttestationStatus, envelope.payload, "attestation status"
        )
        _actor(record.actor, principal)
        if record.attestation != aid:
            raise BadRequest(
                f"the withdrawal names {record.attestation}, not {aid}",
                code="attestation_mismatch",
                status=422,
            )
        found = self._found(aid)
        predicate = open_attestation(found.envelope).predicate
        if record.agent_id != predicate.agent.id:
            raise BadRequest(
                f"the withdrawal names agent {record.agent_id}; the attestation is for "
                f"{predicate.agent.id}",
                code="agent_mismatch",
                status=422,
            )
        auditor = principal.id == predicate.auditor.id
        accreditor = (
            principal.role == "regulator"
            and principal.jurisdiction == predicate.auditor.jurisdiction == self.jurisdiction
        )
        if not (auditor or accreditor):
            raise _refuse(
                "role",
                f"only {predicate.auditor.id} or a regulator of "
                f"{predicate.auditor.jurisdiction} (which accredited it) withdraws it",
                code="wrong_role",
                status=403,
            )
        copy = found.envelope

        def project(conn: Connection, index: int) -> None:
            apply_attestation_status(conn, index, record)

        with read_tx(self._engine) as conn:
            here = attestation_row(conn, aid)
        if here is None:  # keep a copy here, so the withdrawal has a row to mark
            self._log.append_own(copy, lambda c, i: apply_statement(c, i, copy))
        return {"index": self._log.append_own(envelope, project), "id": aid}

    def _found(self, aid: str) -> FoundAttestation:
        found = self._source().attestation(aid)
        if found is None:
            raise NotFound(
                f"no attestation {aid} is logged here or in any peer's mirror",
                code="unknown_attestation",
            )
        return found

    # -- recognition ----------------------------------------------------------------
    def check(self, aid: str, *, automatic: bool = False) -> dict[str, Any]:
        """Dry run: every condition a recognition of ``aid`` here would fail now."""
        found = self._found(aid)
        scheme = self.require_scheme()
        k = self._k(found, scheme) if automatic else None
        failures = self._check(found.envelope, k)
        return {
            "attestation": aid,
            "attestation_entry": found.entry.model_dump(),
            "recogniser": self.jurisdiction,
            "scheme": scheme.ref().model_dump(),
            "countersignatures_needed": k,
            "failures": failures_json(failures),
            "recognisable": not failures,
        }

    def _k(self, found: FoundAttestation, scheme: SignedScheme) -> int:
        agent = open_attestation(found.envelope).predicate.agent
        requirement = scheme.body.requirement(agent.sector, agent.risk_tier)
        return 1 if requirement is None else requirement.countersignatures

    def submit_decision(self, obj: Any, principal: Principal) -> dict[str, Any]:
        """Log a regulator's recognise, refuse or withdraw (with a VSA for a recognition)."""
        self._regulator_here(principal)
        envelope = self._signed(obj, RECOGNITION_TYPE, principal)
        record: RecognitionDecision = _parse(RecognitionDecision, envelope.payload, "decision")
        _actor(record.actor, principal)
        scheme = self.scheme()
        self._party_has_say(scheme)
        if record.jurisdiction != self.jurisdiction:
            raise _refuse(
                "jurisdiction",
                f"this node decides for {self.jurisdiction}, not {record.jurisdiction}",
                code="wrong_jurisdiction",
            )
        found = self._found(record.attestation)
        if record.op == "recognise":
            return self._recognise(envelope, record, found, principal)
        if record.op == "withdraw":
            self._require_standing(record.attestation, "recognised")
        expect = "not_recognised" if record.op == "refuse" else None
        return {"index": self._log_decision(envelope, record, expect=expect)}

    def _recognise(
        self,
        envelope: Envelope,
        record: RecognitionDecision,
        found: FoundAttestation,
        principal: Principal,
    ) -> dict[str, Any]:
        scheme = self.require_scheme()
        k = self._k(found, scheme) if record.automatic else None
        failures = self._check(found.envelope, k)
        failures += _decision_mismatches(record, found, scheme, self._source())
        if failures:
            raise AuditRefused(
                f"{record.attestation} is not recognisable in {self.jurisdiction}:",
                failures,
                code="not_recognisable",
            )
        index = self._log_decision(envelope, record, expect="not_recognised")
        vsa, vsa_index = self._issue_vsa(record, found, scheme)
        return {"index": index, "vsa": vsa.to_json(), "vsa_index": vsa_index}

    def _require_standing(self, aid: str, status: str) -> None:
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(recognitions.c.status).where(
                    recognitions.c.jurisdiction == self.jurisdiction,
                    recognitions.c.attestation == aid,
                )
            ).first()
        if row is None or row.status != status:
            raise BadRequest(
                f"{self.jurisdiction} has no recognition of {aid} in force to withdraw",
                code="not_recognised",
                status=409,
            )

    def _log_decision(
        self, envelope: Envelope, record: RecognitionDecision, *, expect: str | None
    ) -> int:
        leaf = leaf_hash(envelope.to_bytes())

        def project(conn: Connection, index: int) -> None:
            if expect == "not_recognised":
                row = conn.execute(
                    select(recognitions.c.status).where(
                        recognitions.c.jurisdiction == record.jurisdiction,
                        recognitions.c.attestation == record.attestation,
                    )
                ).first()
                if row is not None and row.status == "recognised":
                    raise BadRequest(
                        f"{record.jurisdiction} already recognises {record.attestation}"
                        + ("; withdraw the recognition instead" if record.op == "refuse" else ""),
                        code="already_recognised",
                        status=409,
                    )
            apply_recognition(conn, index, record, leaf)

        with self._lock:
            return self._log.append_own(envelope, project)

    def _issue_vsa(
        self, record: RecognitionDecision, found: FoundAttestation, scheme: SignedScheme
    ) -> tuple[Envelope, int]:
        statement = build_vsa(
            decision=record,
            verifier_id=verifier_id(self.jurisdiction),
            attestation_digest=found.id,
            attestation_entry=found.entry,
            scheme=scheme,
            time_verified=self.now(),
        )
        vsa = sign_envelope(STATEMENT_TYPE, canonical_dumps(statement), [self._signer])
        return vsa, self._log.append_own(vsa, lambda c, i: apply_statement(c, i, vsa))

    # -- the node's own decisions (audit_watch) -------------------------------------
    def auto_recognise(self, found: FoundAttestation) -> dict[str, Any] | None:
        """Recognise ``found`` here if it passes the check with the scheme's k member
        countersignatures; otherwise keep its failures (``pending``) and log nothing."""
        scheme = self.scheme()
        if scheme is None:
            return None
        failures = self._check(found.envelope, self._k(found, scheme))
        if failures:
            self.pending[found.id] = failures
            self.pending_agents[found.id] = found.agent_id
            return None
        self.pending.pop(found.id, None)
        record = self._node_decision(found, scheme, "recognise", ())
        envelope = self._node_envelope(record)
        try:
            index = self._log_decision(envelope, record, expect="not_recognised")
        except BadRequest as exc:
            if exc.code == "already_recognised":
                return None
            raise
        _, vsa_index = self._issue_vsa(record, found, scheme)
        return {"index": index, "vsa_index": vsa_index}

    def withdraw_recognition(self, row: dict[str, Any], reasons: Sequence[Failure]) -> int:
        """Withdraw this party's recognition ``row`` (a recognitions row) on ``reasons``."""
        current = RecognitionDecision.model_validate_json(row["decision"])
        record = current.model_copy(
            update={
                "op": "withdraw",
                "reasons": tuple(reasons),
                "automatic": True,
                "valid_until": None,
                "actor": f"node:{self.origin}",
                "at": self.now(),
            }
        )
        record = RecognitionDecision.model_validate(record.model_dump())
        return self._log_decision(self._node_envelope(record), record, expect=None)

    def _node_decision(
        self, found: FoundAttestation, scheme: SignedScheme, op: str, reasons: Sequence[Failure]
    ) -> RecognitionDecision:
        opened = open_attestation(found.envelope)
        agent = opened.predicate.agent
        return RecognitionDecision.model_validate(
            {
                "op": op,
                "attestation": found.id,
                "attestation_entry": found.entry.model_dump(),
                "agent_id": agent.id,
                "sector": agent.sector,
                "jurisdiction": self.jurisdiction,
                "model_digest": _subject(opened.subjects, "model:"),
                "card_digest": _subject(opened.subjects, "agentcard:"),
                "scheme": scheme.ref().model_dump(),
                "reasons": [f.model_dump() for f in reasons],
                "automatic": True,
                "valid_until": opened.predicate.expires if op == "recognise" else None,
                "actor": f"node:{self.origin}",
                "at": self.now(),
            }
        )

    def _node_envelope(self, record: RecognitionDecision) -> Envelope:
        return sign_envelope(RECOGNITION_TYPE, record.model_dump_json().encode(), [self._signer])

    def decisions_here(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        """This party's decisions (latest per attestation), with pending failures."""
        query = select(recognitions).where(recognitions.c.jurisdiction == self.jurisdiction)
        if agent_id is not None:
            query = query.where(recognitions.c.agent_id == agent_id)
        with read_tx(self._engine) as conn:
            rows = conn.execute(query.order_by(recognitions.c.entry_index)).all()
        return [_decision_json(dict(r._mapping)) for r in rows]

    def in_force_here(self) -> list[dict[str, Any]]:
        with read_tx(self._engine) as conn:
            rows = conn.execute(
                select(recognitions).where(
                    recognitions.c.jurisdiction == self.jurisdiction,
                    recognitions.c.status == "recognised",
                )
            ).all()
        return [dict(r._mapping) for r in rows]

    def decided_here(self) -> set[str]:
        with read_tx(self._engine) as conn:
            rows = conn.execute(
                select(recognitions.c.attestation).where(
                    recognitions.c.jurisdiction == self.jurisdiction
                )
            ).all()
        return {r.attestation for r in rows}


def _subject(subjects: dict[str, str], prefix: str) -> str | None:
    return next((v for k, v in subjects.items() if k.startswith(prefix)), None)


def _decision_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "attestation": row["attestation"],
        "agent_id": row["agent_id"],
        "status": row["status"],
        "automatic": row["automatic"],
        "valid_until": row["valid_until"],
        "decision": orjson.loads(row["decision"]),
        "entry_index": row["entry_index"],
        "leaf_hash": row["leaf_hash"],
    }


def _decision_mismatches(
    record: RecognitionDecision, found: FoundAttestation, scheme: SignedScheme, source: CaseSource
) -> list[Failure]:
    """What the regulator's signed decision states that is not what it recognises."""
    opened = open_attestation(found.envelope)
    expected = {
        "attestation_entry": found.entry,
        "agent_id": opened.predicate.agent.id,
        "sector": opened.predicate.agent.sector,
        "model_digest": _subject(opened.subjects, "model:"),
        "card_digest": _subject(opened.subjects, "agentcard:"),
        "scheme": scheme.ref(),
    }
    failures = [
        Failure(
            condition="decision",
            reason=f"the decision's {name} is {getattr(record, name)!r}; the attestation "
            f"logged says {value!r}",
        )
        for name, value in expected.items()
        if getattr(record, name) != value
    ]
    assert record.valid_until is not None
    if record.valid_until > opened.predicate.expires:
        failures.append(
            Failure(
                condition="decision",
                reason=f"the decision is valid until {record.valid_until.isoformat()}, after "
                f"the attestation expires ({opened.predicate.expires.isoformat()})",
            )
        )
    return failures


def _signature(body: Any) -> Signature:
    if not isinstance(body, dict) or set(body) != {"keyid", "sig"}:
        raise BadRequest(
            'send {"keyid": <hex key id>, "sig": <base64 signature over the PAE>}',
            code="invalid_payload",
            status=422,
        )
    try:
        return Signature(str(body["keyid"]), base64.b64decode(str(body["sig"]), validate=True))
    except (binascii.Error, ValueError):
        raise BadRequest("sig is not valid base64", code="invalid_payload", status=422) from None


def _check_transition(conn: Connection, record: Accreditation) -> None:
    """A grant is new (or re-grants a withdrawn one); the others act on a grant here."""
    row = conn.execute(
        select(accreditations.c.status).where(accreditations.c.id == record.id)
    ).first()
    if record.op == "grant":
        if row is not None and row.status != "withdrawn":
            raise BadRequest(
                f"accreditation {record.id} exists ({row.status}); suspend, reinstate or "
                "withdraw it instead",
                code="accreditation_exists",
                status=409,
            )
        return
    if row is None:
        raise NotFound(f"no accreditation {record.id} is logged here", code="unknown_accreditation")
    allowed = {
        "suspend": {"active"},
        "reinstate": {"suspended"},
        "withdraw": {"active", "suspended"},
    }
    if row.status not in allowed[record.op]:
        raise BadRequest(
            f"accreditation {record.id} is {row.status}: it cannot be {record.op}ed",
            code="accreditation_state",
            status=409,
        )
