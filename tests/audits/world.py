"""An audit world for the audit tests and the recognition benchmark.

Real keys throughout: the roster world of tests/federation (GB, FR, DE, CA members, AU
partner, each with log, witness, entry and roster keys and one regulator), a common
scheme signed by three members' roster keys, an auditor accredited by GB, a critical
finance agent of GB, three core evaluation results and a kill-switch test logged on
GB's log among filler entries, a checkpoint of that log signed by GB's log key and
cosigned by members' witnesses, and the auditor's signed attestation. ``case()`` is a
RecognitionCase that passes; tests vary one thing with ``dataclasses.replace``.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from custodes.audits.attestation import build_statement, sign_attestation
from custodes.audits.models import (
    KILLSWITCH_TEST_TYPE,
    Accreditation,
    AccreditationScope,
    AuditorRef,
    EvidenceItem,
    KillswitchTest,
    LogRef,
)
from custodes.audits.recognition import EvidenceProof, RecognitionCase
from custodes.audits.scheme import (
    SignedScheme,
    example_scheme,
    sign_scheme,
    summarise_result,
    summarise_test,
    verify_scheme,
)
from custodes.evals.metrics import wilson_interval
from custodes.evals.results import (
    RESULT_TYPE,
    DriftSummary,
    EvalResult,
    FamilyFigures,
    JudgeInfo,
    OverRefusal,
    SuiteRef,
)
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.cosignature import cosign
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.keys import load_or_create_cosigner, load_or_create_note_signer
from custodes.ledger.merkle import inclusion_proof, leaf_hash, node_hash, subtree_root
from custodes.ledger.note import parse_note
from custodes.registry.models import AgentRecord
from tests.federation.world import RosterWorld, found_world

__all__ = ["AuditWorld", "Tree", "build_world", "eval_result", "killswitch_test"]

AGENT_ID = "urn:custodes:gb:agent:trader"
OPERATOR = "operator:gb-bank"
MODEL_DIGEST = "sha256:" + "a1" * 32
CARD_DIGEST = "sha256:" + "c2" * 32
CODE_DIGEST = "sha256:" + "e3" * 32
ACCREDITATION = "acc:gb:acme-audit"
AUDITOR = "auditor:acme"


def eval_result(
    agent_id: str = AGENT_ID,
    *,
    successes: int = 1,
    valid: int = 600,
    family_successes: Sequence[int] = (1, 0),
    refusals: int = 3,
    benign: int = 64,
    version: str = "1.0.0",
    suite: str = "core",
    drift_alert: bool | None = None,
    epoch: int = 0,
    attempts: int = 3,
) -> EvalResult:
    """A published result of ``suite`` with the figures given (Wilson from the counts)."""
    at = datetime(2026, 11, 1, tzinfo=UTC)
    per_family = valid // max(1, len(family_successes))
    families = [_family(f"family-{i}", s, per_family) for i, s in enumerate(family_successes)] + [
        _family("overall", successes, valid)
    ]
    drift = None
    if drift_alert is not None:
        drift = DriftSummary(
            baseline_epoch=0,
            baseline_run_id="base",
            dc=0.1,
            d_beh=0.1,
            p_beh=0.01 if drift_alert else 0.5,
            items=10,
            permutations=100,
            level=0.05,
            alert=drift_alert,
        )
    return EvalResult(
        run_id=f"run-{epoch}-{successes}",
        epoch=epoch,
        suite=SuiteRef(id=suite, version=version, digest="sha256:" + "5" * 64),
        target="agent",
        agent_id=agent_id,
        judge=JudgeInfo(id="rule", version="1"),
        attempts=attempts,
        samples=valid + benign,
        families=tuple(families),
        over_refusal=OverRefusal(
            refusals=refusals,
            valid=benign,
            errors=0,
            undetermined=0,
            rate=refusals / benign if benign else None,
            wilson=wilson_interval(refusals, benign),
        ),
        started_at=at,
        finished_at=at + timedelta(hours=1),
        drift=drift,
        issuer="auditor:acme",
    )


def _family(name: str, successes: int, valid: int) -> FamilyFigures:
    return FamilyFigures(
        family=name,
        successes=successes,
        partial=0,
        valid=valid,
        errors=0,
        undetermined=0,
        attempts_per_behaviour=3,
        behaviours=max(1, valid // 3),
        asr=successes / valid if valid else None,
        wilson=wilson_interval(successes, valid),
        baseline_asr=None,
    )


def killswitch_test(
    agent_id: str = AGENT_ID, *, passed: bool = True, ms: float = 180.0
) -> KillswitchTest:
    at = datetime(2026, 11, 2, tzinfo=UTC)
    return KillswitchTest(
        test_id=f"kst-{int(ms)}-{int(passed)}-test",
        agent_id=agent_id,
        sent_at=at,
        halt_observed=passed,
        halted_at=at + timedelta(milliseconds=ms) if passed else None,
        time_to_halt_ms=ms if passed else None,
        halt_recorded=passed,
        deadline_ms=5000,
        passed=passed,
        actor="node:gb",
        at=at,
    )


class Tree:
    """An in-memory log: leaves, perfect subtrees by level, inclusion proofs."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.entries = list(entries)
        self.levels: list[list[bytes]] = [[leaf_hash(e) for e in self.entries]]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    @property
    def size(self) -> int:
        return len(self.entries)

    def read(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self) -> bytes:
        return subtree_root(self.read, 0, self.size)

    def proof(self, index: int) -> list[bytes]:
        return inclusion_proof(index, self.size, self.read)


@dataclass
class AuditWorld:
    roster_world: RosterWorld
    scheme: SignedScheme
    auditor: EnvelopeSigner
    grant: Accreditation
    agent: AgentRecord
    refs: list[LogRef]
    tree: Tree
    checkpoint: bytes
    envelope: Envelope
    now: datetime
    evidence_items: list[EvidenceItem] = field(default_factory=list)

    @property
    def roster(self):  # type: ignore[no-untyped-def]
        return self.roster_world.genesis

    def origin(self, code: str = "GB") -> str:
        return self.roster_world.parties[code].origin

    def proofs(self) -> dict[tuple[str, int], EvidenceProof]:
        return {
            (r.origin, r.index): EvidenceProof(
                r, self.tree.entries[r.index], self.tree.proof(r.index), self.checkpoint
            )
            for r in self.refs
        }

    def case(self, **changes: Any) -> RecognitionCase:
        values: dict[str, Any] = {
            "envelope": self.envelope,
            "accreditation": self.grant,
            "accreditation_status": "active",
            "evidence": self.proofs(),
            "agent": self.agent,
            "model_digest": MODEL_DIGEST,
            "card_digest": CARD_DIGEST,
            "drift_alerts": (),
            "attestation_status": "active",
            "scheme": self.scheme,
            "roster": self.roster,
            "recogniser": "FR",
            "now": self.now,
        }
        values.update(changes)
        return RecognitionCase(**values)

    def attest(
        self,
        *,
        evidence: Sequence[EvidenceItem] | None = None,
        agent: AgentRecord | None = None,
        model_digest: str = MODEL_DIGEST,
        card_digest: str = CARD_DIGEST,
        issued: datetime | None = None,
        signer: EnvelopeSigner | None = None,
        scheme: SignedScheme | None = None,
        auditor_ref: AuditorRef | None = None,
        result: str = "PASSED",
    ) -> Envelope:
        """A fresh attestation like the world's, with one thing changed."""
        statement = build_statement(
            agent=agent or self.agent,
            model_digest=model_digest,
            card_digest=card_digest,
            code_digest=CODE_DIGEST,
            scheme=scheme or self.scheme,
            auditor=auditor_ref or self.auditor_ref(),
            evidence=evidence if evidence is not None else self.evidence_items,
            issued=issued or self.now - timedelta(days=1),
            result=result,
        )
        return sign_attestation(statement, signer or self.auditor)

    def auditor_ref(self) -> AuditorRef:
        return AuditorRef(
            id=AUDITOR,
            jurisdiction="GB",
            accreditation=ACCREDITATION,
            accreditation_entry=LogRef(origin=self.origin(), index=1, leaf_hash="0" * 64),
        )

    def note(
        self, cosigners: Sequence[str], *, tree: Tree | None = None, origin: str = "GB"
    ) -> bytes:
        """A checkpoint of ``origin``'s log over ``tree``, cosigned by ``cosigners``."""
        return signed_checkpoint(self.roster_world, origin, tree or self.tree, cosigners)


def signed_checkpoint(world: RosterWorld, code: str, tree: Tree, cosigners: Sequence[str]) -> bytes:
    origin = world.parties[code].origin
    log_key = load_or_create_note_signer(world.data_dir(code) / "log.key", origin)
    note = sign_checkpoint(Checkpoint(origin, tree.size, tree.root()), log_key)
    text = parse_note(note).text
    lines = ""
    for witness_code in cosigners:
        w_origin = world.parties[witness_code].origin
        witness = load_or_create_cosigner(
            world.data_dir(witness_code) / "witness.key", f"{w_origin}/witness"
        )
        lines += cosign(text, witness, int(time.time())).line()
    return note + lines.encode()


def _entry(payload_type: str, record: Any, signer: EnvelopeSigner) -> bytes:
    payload = record.model_dump_json().encode()
    return sign_envelope(payload_type, payload, [signer]).to_bytes()


def _filler(i: int) -> bytes:
    return canonical_dumps({"filler": i, "h": hashlib.sha256(str(i).encode()).hexdigest()})


def build_world(
    root: Path,
    *,
    leaves: int = 16,
    cosigners: Sequence[str] = ("GB", "FR", "DE"),
    results: Sequence[EvalResult] | None = None,
    tests: Sequence[KillswitchTest] | None = None,
) -> AuditWorld:
    """The world; ``leaves`` entries in GB's log, the evidence spread among them."""
    roster_world = found_world(root)
    now = datetime.now(UTC).replace(microsecond=0)
    body = example_scheme(issued=now - timedelta(days=30), countersignatures=2)
    document: dict[str, Any] | None = None
    for code in ("GB", "FR", "DE"):
        document = sign_scheme(body, roster_world.votes[code], document)
    scheme = verify_scheme(document, roster_world.genesis, now=now)
    auditor = EnvelopeSigner.generate()
    grant = Accreditation(
        op="grant",
        id=ACCREDITATION,
        jurisdiction="GB",
        auditor=AUDITOR,
        auditor_name="Acme Audit LLP",
        auditor_key=base64.b64encode(auditor.public_key).decode(),
        affiliations=("operator:acme-holdings",),
        scope=AccreditationScope(sectors=("finance",), suites=("core",)),
        valid_from=now - timedelta(days=60),
        valid_until=now + timedelta(days=365),
        actor="regulator:gb",
        at=now - timedelta(days=60),
    )
    agent = AgentRecord(
        id=AGENT_ID,
        name="GB trader",
        version="1.0",
        operator=OPERATOR,
        home_jurisdiction="GB",
        operating_jurisdictions=("FR", "DE", "CA"),
        sector="finance",
        risk_tier="critical",
        autonomy_level=2,
        intended_purpose="trades on behalf of a GB bank",
        model="model-gb-1",
    )
    evaluator = EnvelopeSigner.generate()
    node = EnvelopeSigner.generate()
    results = list(results) if results is not None else [eval_result(epoch=e) for e in range(3)]
    tests = list(tests) if tests is not None else [killswitch_test()]
    evidence = [(RESULT_TYPE, r, evaluator) for r in results] + [
        (KILLSWITCH_TEST_TYPE, t, node) for t in tests
    ]
    entries = [_filler(i) for i in range(leaves)]
    step = max(1, leaves // (len(evidence) + 1))
    positions = [min(leaves - 1, (i + 1) * step) for i in range(len(evidence))]
    for pos, (ptype, record, signer) in zip(positions, evidence, strict=True):
        entries[pos] = _entry(ptype, record, signer)
    tree = Tree(entries)
    origin = roster_world.parties["GB"].origin
    refs = [
        LogRef(origin=origin, index=p, leaf_hash=leaf_hash(entries[p]).hex()) for p in positions
    ]
    items = [
        EvidenceItem(
            kind="eval_result" if ptype == RESULT_TYPE else "killswitch_test",
            entry=ref,
            summary=summarise_result(record) if ptype == RESULT_TYPE else summarise_test(record),
        )
        for ref, (ptype, record, _) in zip(refs, evidence, strict=True)
    ]
    checkpoint = signed_checkpoint(roster_world, "GB", tree, cosigners)
    world = AuditWorld(
        roster_world,
        scheme,
        auditor,
        grant,
        agent,
        refs,
        tree,
        checkpoint,
        None,
        now,
        items,  # type: ignore[arg-type]
    )
    world.envelope = world.attest()
    return world
