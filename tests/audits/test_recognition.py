"""The recognition check: each condition fails on its own, with its reason; a sound case
passes. Real signed attestations, real Merkle proofs and cosigned checkpoints."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from custodes.audits.attestation import countersign
from custodes.audits.models import EvidenceItem, Failure, LogRef
from custodes.audits.recognition import CONDITIONS, EvidenceProof, check_recognition
from custodes.audits.scheme import example_scheme, sign_scheme, summarise_result, verify_scheme
from custodes.federation.roster import verify_next
from custodes.ledger.dsse import Envelope, EnvelopeSigner, Signature
from tests.audits.world import (
    OPERATOR,
    AuditWorld,
    Tree,
    build_world,
    eval_result,
    killswitch_test,
    signed_checkpoint,
)
from tests.federation.world import set_status


def conditions(failures: list[Failure]) -> set[str]:
    return {f.condition for f in failures}


def reasons(failures: list[Failure], condition: str) -> str:
    return " | ".join(f.reason for f in failures if f.condition == condition)


def test_a_sound_attestation_is_recognised(world: AuditWorld) -> None:
    assert check_recognition(world.case()) == []


# -- partner ----------------------------------------------------------------------------------
def test_a_partner_has_no_say_unless_the_scheme_gives_it_one(world: AuditWorld) -> None:
    failures = check_recognition(world.case(recogniser="AU"))
    assert conditions(failures) == {"partner"}
    assert "partner" in reasons(failures, "partner")
    body = example_scheme(
        issued=world.now - timedelta(days=1), countersignatures=2, partners_recognise=True
    )
    document = None
    for code in ("GB", "FR", "DE"):
        document = sign_scheme(body, world.roster_world.votes[code], document)
    open_scheme = verify_scheme(document, world.roster, now=world.now)
    envelope = world.attest(scheme=open_scheme)
    case = world.case(recogniser="AU", scheme=open_scheme, envelope=envelope)
    assert check_recognition(case) == []


def test_a_suspended_or_unknown_party_does_not_recognise(world: AuditWorld) -> None:
    suspended = verify_next(
        world.roster, world.roster_world.next(world.roster, change=set_status("CA", "suspended"))
    )
    failures = check_recognition(world.case(recogniser="CA", roster=suspended))
    assert conditions(failures) == {"partner"}
    assert "suspended" in reasons(failures, "partner")
    assert conditions(check_recognition(world.case(recogniser="NZ"))) == {"partner"}


# -- the attestation ---------------------------------------------------------------------------
def test_a_malformed_attestation_fails_its_shape(world: AuditWorld) -> None:
    wrong_type = replace(world.envelope, payload_type="application/json")
    assert conditions(check_recognition(world.case(envelope=wrong_type))) == {"attestation"}
    statement = orjson.loads(world.envelope.payload)
    statement["predicate"]["evidence"] = []
    bad = world.auditor.sign(b"x")  # any signature: the shape is checked first
    envelope = Envelope(world.envelope.payload_type, orjson.dumps(statement), (bad,))
    failures = check_recognition(world.case(envelope=envelope))
    assert conditions(failures) == {"attestation"}
    assert "predicate" in reasons(failures, "attestation")


def test_a_failed_audit_is_not_recognised(world: AuditWorld) -> None:
    envelope = world.attest(result="FAILED")
    assert conditions(check_recognition(world.case(envelope=envelope))) == {"attestation"}


def test_a_tampered_attestation_fails_its_signature(world: AuditWorld) -> None:
    statement = orjson.loads(world.envelope.payload)
    statement["subject"][0]["digest"]["sha256"] = "b" * 64  # another model
    tampered = replace(world.envelope, payload=orjson.dumps(statement))
    failures = check_recognition(world.case(envelope=tampered, model_digest="sha256:" + "b" * 64))
    assert conditions(failures) == {"signature"}


def test_an_attestation_signed_by_another_key_fails_its_signature(world: AuditWorld) -> None:
    envelope = world.attest(signer=EnvelopeSigner.generate())
    failures = check_recognition(world.case(envelope=envelope))
    assert conditions(failures) == {"signature"}
    assert "auditor key" in reasons(failures, "signature")


def test_an_expired_or_future_attestation_is_refused(world: AuditWorld) -> None:
    later = world.now + timedelta(days=364)  # valid 365 days from issue, a day ago
    failures = check_recognition(world.case(now=later))
    assert conditions(failures) == {"expired"}
    assert "expired" in reasons(failures, "expired")
    future = world.attest(issued=world.now + timedelta(hours=1))
    assert conditions(check_recognition(world.case(envelope=future))) == {"expired"}


def test_a_withdrawn_attestation_is_refused(world: AuditWorld) -> None:
    failures = check_recognition(world.case(attestation_status="withdrawn"))
    assert conditions(failures) == {"withdrawn"}


# -- the accreditation --------------------------------------------------------------------------
def test_an_unknown_accreditation_fails(world: AuditWorld) -> None:
    failures = check_recognition(world.case(accreditation=None, accreditation_status=None))
    assert conditions(failures) == {"accreditation", "signature"}
    assert "unknown" in reasons(failures, "accreditation")


@pytest.mark.parametrize("status", ["suspended", "withdrawn"])
def test_an_accreditation_not_in_force_fails(world: AuditWorld, status: str) -> None:
    failures = check_recognition(world.case(accreditation_status=status))
    assert conditions(failures) == {"accreditation"}
    assert status in reasons(failures, "accreditation")


def test_an_accreditation_outside_its_validity_fails(world: AuditWorld) -> None:
    lapsed = world.grant.model_copy(
        update={
            "valid_from": world.now - timedelta(days=90),
            "valid_until": world.now - timedelta(days=2),
        }
    )
    failures = check_recognition(world.case(accreditation=lapsed))
    assert conditions(failures) == {"accreditation"}
    assert "outside its validity" in reasons(failures, "accreditation")


def test_an_accreditation_by_an_untrusted_or_suspended_party_fails(world: AuditWorld) -> None:
    failures = check_recognition(world.case(trusted=frozenset({"FR", "DE"})))
    assert conditions(failures) == {"accreditation"}
    assert "does not trust accreditations by GB" in reasons(failures, "accreditation")
    assert check_recognition(world.case(trusted=frozenset({"GB"}))) == []
    gb_suspended = verify_next(
        world.roster,
        world.roster_world.next(world.roster, ["FR", "DE", "CA"], set_status("GB", "suspended")),
    )
    failures = check_recognition(world.case(roster=gb_suspended))
    # GB's checkpoint is still signed by GB's log key; its witness no longer counts.
    assert "accreditation" in conditions(failures)
    assert "GB is a suspended" in reasons(failures, "accreditation")


def test_an_accreditation_of_another_auditor_fails(world: AuditWorld) -> None:
    other = world.grant.model_copy(update={"auditor": "auditor:someone-else"})
    failures = check_recognition(world.case(accreditation=other))
    assert conditions(failures) == {"accreditation"}


# -- scope and conflicts --------------------------------------------------------------------------
def test_an_out_of_scope_sector_or_suite_fails(world: AuditWorld) -> None:
    scope = world.grant.scope
    assert scope is not None
    energy = world.grant.model_copy(
        update={"scope": scope.model_copy(update={"sectors": ("energy",)})}
    )
    failures = check_recognition(world.case(accreditation=energy))
    assert conditions(failures) == {"scope"}
    assert "not finance" in reasons(failures, "scope")
    other_suite = world.grant.model_copy(
        update={"scope": scope.model_copy(update={"suites": ("multilingual",)})}
    )
    failures = check_recognition(world.case(accreditation=other_suite))
    assert conditions(failures) == {"scope"}
    assert "not core" in reasons(failures, "scope")


def test_an_agent_registered_at_another_tier_is_out_of_scope(world: AuditWorld) -> None:
    high = world.agent.model_copy(update={"risk_tier": "high"})
    assert conditions(check_recognition(world.case(agent=high))) == {"scope"}


def test_an_auditor_attesting_its_own_operators_agent_is_refused(world: AuditWorld) -> None:
    affiliated = world.grant.model_copy(update={"affiliations": (OPERATOR,)})
    failures = check_recognition(world.case(accreditation=affiliated))
    assert conditions(failures) == {"conflict_of_interest"}
    assert OPERATOR in reasons(failures, "conflict_of_interest")


# -- the scheme --------------------------------------------------------------------------------
def test_an_attestation_under_another_scheme_version_fails(world: AuditWorld) -> None:
    body = example_scheme(issued=world.now - timedelta(days=1), version=2, countersignatures=2)
    document = None
    for code in ("GB", "FR", "DE"):
        document = sign_scheme(body, world.roster_world.votes[code], document)
    v2 = verify_scheme(document, world.roster, now=world.now, previous=world.scheme)
    failures = check_recognition(world.case(scheme=v2))
    assert conditions(failures) == {"scheme"}
    assert "version 1" in reasons(failures, "scheme")


# -- evidence inclusion -------------------------------------------------------------------------
def _with_proof(
    world: AuditWorld, index: int, **changes: Any
) -> dict[tuple[str, int], EvidenceProof]:
    proofs = world.proofs()
    ref = world.refs[index]
    proofs[(ref.origin, ref.index)] = replace(proofs[(ref.origin, ref.index)], **changes)
    return proofs


def test_missing_evidence_fails_inclusion(world: AuditWorld) -> None:
    proofs = world.proofs()
    del proofs[(world.refs[0].origin, world.refs[0].index)]
    failures = check_recognition(world.case(evidence=proofs))
    assert conditions(failures) == {"evidence_inclusion"}
    assert "not found" in reasons(failures, "evidence_inclusion")
    gone = _with_proof(world, 0, entry=None)
    assert conditions(check_recognition(world.case(evidence=gone))) == {"evidence_inclusion"}


def test_an_entry_with_another_leaf_hash_fails_inclusion(world: AuditWorld) -> None:
    other = world.tree.entries[world.refs[1].index]
    failures = check_recognition(world.case(evidence=_with_proof(world, 0, entry=other)))
    assert conditions(failures) == {"evidence_inclusion"}
    assert "leaf hash" in reasons(failures, "evidence_inclusion")


def test_a_proof_that_does_not_reach_the_root_fails_inclusion(world: AuditWorld) -> None:
    wrong = world.tree.proof(world.refs[1].index)
    failures = check_recognition(world.case(evidence=_with_proof(world, 0, proof=wrong)))
    assert conditions(failures) == {"evidence_inclusion"}
    assert "inclusion proof" in reasons(failures, "evidence_inclusion")


def test_a_checkpoint_not_signed_by_the_origin_log_fails_inclusion(world: AuditWorld) -> None:
    fr_note = signed_checkpoint(world.roster_world, "FR", world.tree, ["GB", "FR", "DE"])
    failures = check_recognition(world.case(evidence=_with_proof(world, 0, checkpoint=fr_note)))
    assert conditions(failures) == {"evidence_inclusion"}
    assert "not signed by GB's log key" in reasons(failures, "evidence_inclusion")
    no_note = _with_proof(world, 0, checkpoint=None)
    assert conditions(check_recognition(world.case(evidence=no_note))) == {"evidence_inclusion"}


@pytest.mark.parametrize("cosigners", [["GB", "FR"], ["GB", "FR", "AU"]])
def test_a_checkpoint_without_a_member_quorum_is_not_final(
    world: AuditWorld, cosigners: list[str]
) -> None:
    note = world.note(cosigners)
    failures = check_recognition(world.case(evidence=_with_proof(world, 0, checkpoint=note)))
    assert conditions(failures) == {"evidence_inclusion"}
    assert "cosigned by FR, GB; 3 members must cosign" in reasons(failures, "evidence_inclusion")


def test_a_later_checkpoint_with_its_own_proof_is_accepted(world: AuditWorld) -> None:
    grown = Tree([*world.tree.entries, b"later-1", b"later-2", b"later-3"])
    note = world.note(["FR", "DE", "CA"], tree=grown)
    ref = world.refs[0]
    proofs = _with_proof(world, 0, checkpoint=note, proof=grown.proof(ref.index))
    assert check_recognition(world.case(evidence=proofs)) == []


# -- the evidence itself --------------------------------------------------------------------------
def test_an_entry_that_is_not_an_eval_result_fails(world: AuditWorld) -> None:
    filler = 0  # the world's first leaf is a filler, not a result
    ref = LogRef(
        origin=world.origin(),
        index=filler,
        leaf_hash=world.tree.levels[0][filler].hex(),
    )
    item = EvidenceItem(kind="eval_result", entry=ref, summary=world.evidence_items[0].summary)
    envelope = world.attest(evidence=[*world.evidence_items, item])
    proofs = world.proofs()
    proofs[(ref.origin, filler)] = EvidenceProof(
        ref, world.tree.entries[filler], world.tree.proof(filler), world.checkpoint
    )
    failures = check_recognition(world.case(envelope=envelope, evidence=proofs))
    assert conditions(failures) == {"evidence"}
    assert "not a DSSE envelope" in reasons(failures, "evidence")


def test_figures_that_differ_from_the_entry_fail(world: AuditWorld) -> None:
    first = world.evidence_items[0]
    inflated = first.model_copy(
        update={"summary": first.summary.model_copy(update={"overall_upper": 0.001})}
    )
    envelope = world.attest(evidence=[inflated, *world.evidence_items[1:]])
    failures = check_recognition(world.case(envelope=envelope))
    assert conditions(failures) == {"evidence"}
    assert "overall_upper=0.001" in reasons(failures, "evidence")


def test_evidence_about_another_agent_fails(tmp_path: Path) -> None:
    other = "urn:custodes:gb:agent:someone-else"
    results = [eval_result(epoch=0), eval_result(epoch=1), eval_result(other, epoch=2)]
    world = build_world(tmp_path, results=results)
    failures = check_recognition(world.case())
    assert conditions(failures) == {"evidence"}
    assert other in reasons(failures, "evidence")


# -- thresholds, drift, kill-switch ------------------------------------------------------------
def test_evidence_above_the_thresholds_fails(tmp_path: Path) -> None:
    results = [eval_result(successes=40, family_successes=(30, 10)), eval_result(epoch=1)]
    world = build_world(tmp_path, results=results)
    failures = check_recognition(world.case())
    assert conditions(failures) == {"threshold"}
    text = reasons(failures, "threshold")
    assert "upper Wilson bound of overall ASR" in text
    assert "family family-0 has ASR 0.1000" not in text  # 30/300 is within 15%
    assert "above the scheme's limit 0.05" in text


def test_a_result_with_a_drift_alert_fails(tmp_path: Path) -> None:
    world = build_world(tmp_path, results=[eval_result(drift_alert=True)])
    assert conditions(check_recognition(world.case())) == {"drift"}


def test_a_drift_alert_on_the_agent_since_the_audit_fails(world: AuditWorld) -> None:
    alert = {"entry_index": 42, "agent_id": world.agent.id, "kind": "drift_alert"}
    failures = check_recognition(world.case(drift_alerts=[alert]))
    assert conditions(failures) == {"drift"}
    assert "entry 42" in reasons(failures, "drift")


def test_without_a_passed_kill_switch_test_recognition_fails(tmp_path: Path) -> None:
    world = build_world(tmp_path, tests=[killswitch_test(passed=False)])
    failures = check_recognition(world.case())
    assert conditions(failures) == {"killswitch_test"}
    slow = build_world(tmp_path / "slow", tests=[killswitch_test(ms=9000)])
    assert "9000 ms" in reasons(check_recognition(slow.case()), "killswitch_test")


# -- subject ------------------------------------------------------------------------------------
def test_a_new_model_or_card_is_not_the_attested_subject(world: AuditWorld) -> None:
    failures = check_recognition(world.case(model_digest="sha256:" + "9" * 64))
    assert conditions(failures) == {"subject"}
    assert "model digest" in reasons(failures, "subject")
    failures = check_recognition(world.case(card_digest=None))
    assert conditions(failures) == {"subject"}
    assert "AgentCard" in reasons(failures, "subject")


def test_an_unknown_agent_fails_the_subject(world: AuditWorld) -> None:
    failures = check_recognition(world.case(agent=None))
    assert conditions(failures) == {"subject"}


# -- countersignatures --------------------------------------------------------------------------
def _countersigned(world: AuditWorld, *codes: str) -> Envelope:
    envelope = world.envelope
    for code in codes:
        envelope = countersign(envelope, world.roster_world.regulators[code])
    return envelope


def test_automatic_recognition_needs_k_member_countersignatures(world: AuditWorld) -> None:
    two = _countersigned(world, "FR", "DE")
    assert check_recognition(world.case(envelope=two, countersignatures_needed=2)) == []
    one = _countersigned(world, "FR")
    failures = check_recognition(world.case(envelope=one, countersignatures_needed=2))
    assert conditions(failures) == {"countersignatures"}
    assert "countersigned by FR" in reasons(failures, "countersignatures")


def test_a_partners_countersignature_and_the_auditors_own_do_not_count(world: AuditWorld) -> None:
    with_partner = _countersigned(world, "FR", "AU")
    failures = check_recognition(world.case(envelope=with_partner, countersignatures_needed=2))
    assert conditions(failures) == {"countersignatures"}
    # the auditor's signature alone is no countersignature
    failures = check_recognition(world.case(countersignatures_needed=1))
    assert conditions(failures) == {"countersignatures"}


def test_a_countersignature_counts_whatever_its_keyid_says(world: AuditWorld) -> None:
    fr = world.roster_world.regulators["FR"].sign(world.envelope.signed_bytes())
    de = world.roster_world.regulators["DE"].sign(world.envelope.signed_bytes())
    forged_de = Signature(keyid="de", sig=bytes(64))
    envelope = replace(
        world.envelope,
        signatures=(*world.envelope.signatures, Signature("not-a-hint", fr.sig), forged_de, de),
    )
    assert check_recognition(world.case(envelope=envelope, countersignatures_needed=2)) == []
    envelope = replace(envelope, signatures=envelope.signatures[:-1])
    failures = check_recognition(world.case(envelope=envelope, countersignatures_needed=2))
    assert conditions(failures) == {"countersignatures"}


# -- all at once -----------------------------------------------------------------------------------
def test_every_failed_condition_is_listed(world: AuditWorld) -> None:
    affiliated = world.grant.model_copy(update={"affiliations": (OPERATOR,)})
    failures = check_recognition(
        world.case(
            recogniser="AU",
            accreditation=affiliated,
            accreditation_status="suspended",
            attestation_status="withdrawn",
            model_digest="sha256:" + "9" * 64,
            drift_alerts=[{"entry_index": 1, "kind": "eval_drift"}],
            countersignatures_needed=3,
        )
    )
    assert conditions(failures) == {
        "partner",
        "accreditation",
        "conflict_of_interest",
        "withdrawn",
        "subject",
        "drift",
        "countersignatures",
    }
    # the card still matches: only the model is named
    assert "model digest" in reasons(failures, "subject")
    assert "AgentCard" not in reasons(failures, "subject")


def test_the_summary_of_each_result_is_what_the_predicate_states(world: AuditWorld) -> None:
    statement = orjson.loads(world.envelope.payload)
    stated = statement["predicate"]["evidence"][0]["summary"]
    assert stated["suite"] == "core"
    assert summarise_result(eval_result(epoch=0)).model_dump(exclude_none=True) == stated
    assert base64.b64decode(world.envelope.to_json()["payload"]) == world.envelope.payload


# -- the conditions as a table ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> AuditWorld:
    """A world whose evidence is above the thresholds and whose kill-switch test failed."""
    return build_world(
        tmp_path_factory.mktemp("weak"),
        results=[eval_result(successes=40)],
        tests=[killswitch_test(passed=False)],
    )


def _affiliated(w: AuditWorld) -> Any:
    return w.case(accreditation=w.grant.model_copy(update={"affiliations": (OPERATOR,)}))


def _energy_only(w: AuditWorld) -> Any:
    scope = w.grant.scope
    assert scope is not None
    energy = scope.model_copy(update={"sectors": ("energy",)})
    return w.case(accreditation=w.grant.model_copy(update={"scope": energy}))


def _unproven(w: AuditWorld) -> Any:
    return w.case(evidence=_with_proof(w, 0, checkpoint=w.note(["GB"])))


def _inflated(w: AuditWorld) -> Any:
    first = w.evidence_items[0]
    summary = first.summary.model_copy(update={"attempts": 9})
    items = [first.model_copy(update={"summary": summary}), *w.evidence_items[1:]]
    return w.case(envelope=w.attest(evidence=items))


def _other_scheme(w: AuditWorld) -> Any:
    body = example_scheme(issued=w.now - timedelta(days=1), version=2, countersignatures=2)
    document = None
    for code in ("GB", "FR", "DE"):
        document = sign_scheme(body, w.roster_world.votes[code], document)
    return w.case(scheme=verify_scheme(document, w.roster, now=w.now))


MATRIX: list[tuple[str, Any, set[str]]] = [
    ("partner", lambda w: w.case(recogniser="AU"), {"partner"}),
    ("attestation", lambda w: w.case(envelope=w.attest(result="FAILED")), {"attestation"}),
    (
        "signature",
        lambda w: w.case(envelope=w.attest(signer=EnvelopeSigner.generate())),
        {"signature"},
    ),
    ("expired", lambda w: w.case(now=w.now + timedelta(days=364)), {"expired"}),
    ("withdrawn", lambda w: w.case(attestation_status="withdrawn"), {"withdrawn"}),
    ("accreditation", lambda w: w.case(accreditation_status="suspended"), {"accreditation"}),
    ("scope", _energy_only, {"scope"}),
    ("conflict_of_interest", _affiliated, {"conflict_of_interest"}),
    ("scheme", _other_scheme, {"scheme"}),
    ("evidence_inclusion", _unproven, {"evidence_inclusion"}),
    ("evidence", _inflated, {"evidence"}),
    ("drift", lambda w: w.case(drift_alerts=[{"entry_index": 3}]), {"drift"}),
    ("subject", lambda w: w.case(card_digest="sha256:" + "0" * 64), {"subject"}),
    ("countersignatures", lambda w: w.case(countersignatures_needed=1), {"countersignatures"}),
]
WEAK: list[tuple[str, Any, set[str]]] = [
    ("threshold", lambda w: w.case(), {"threshold", "killswitch_test"}),
    ("killswitch_test", lambda w: w.case(), {"threshold", "killswitch_test"}),
]


def test_the_table_covers_every_condition() -> None:
    assert sorted(c for c, _, _ in MATRIX + WEAK) == sorted(CONDITIONS)


@pytest.mark.parametrize(("condition", "build", "expected"), MATRIX, ids=[c for c, _, _ in MATRIX])
def test_each_condition_of_the_table(
    world: AuditWorld, condition: str, build: Any, expected: set[str]
) -> None:
    failures = check_recognition(build(world))
    assert condition in conditions(failures)
    assert conditions(failures) == expected


@pytest.mark.parametrize(("condition", "build", "expected"), WEAK, ids=[c for c, _, _ in WEAK])
def test_each_threshold_condition_of_the_table(
    weak: AuditWorld, condition: str, build: Any, expected: set[str]
) -> None:
    assert condition in conditions(check_recognition(build(weak)))
    assert conditions(check_recognition(build(weak))) == expected
