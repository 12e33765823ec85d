"""Verification summaries: built from a recognition, signed by the recogniser's node key,
verified offline step by step in the order SLSA lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from custodes.audits.models import STATEMENT_TYPE, VSA_PREDICATE, LogRef, RecognitionDecision
from custodes.audits.vsa import build_vsa, recognised_level, sign_vsa, verifier_id, verify_vsa
from custodes.errors import BadRequest
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.keys import load_or_create_entry_signer
from tests.audits.world import AGENT_ID, CARD_DIGEST, MODEL_DIGEST, AuditWorld


def _decision(world: AuditWorld, op: str = "recognise") -> RecognitionDecision:
    refused = op != "recognise"
    return RecognitionDecision(
        op=op,  # type: ignore[arg-type]
        attestation="sha256:" + "d" * 64,
        attestation_entry=LogRef(origin=world.origin(), index=9, leaf_hash="e" * 64),
        agent_id=AGENT_ID,
        sector="finance",
        jurisdiction="FR",
        model_digest=MODEL_DIGEST,
        card_digest=CARD_DIGEST,
        scheme=world.scheme.ref(),
        reasons=({"condition": "subject", "reason": "new model"},) if refused else (),  # type: ignore[arg-type]
        valid_until=None if refused else world.now,
        actor="regulator:fr",
        at=world.now,
    )


def _fr_node(world: AuditWorld) -> EnvelopeSigner:
    return load_or_create_entry_signer(world.roster_world.data_dir("FR") / "node.key", "node")[1]


def _vsa(world: AuditWorld, op: str = "recognise") -> dict[str, Any]:
    decision = _decision(world, op)
    return build_vsa(
        decision=decision,
        verifier_id=verifier_id("FR"),
        attestation_digest=decision.attestation,
        attestation_entry=decision.attestation_entry,
        scheme=world.scheme,
        time_verified=world.now,
        risk_tier="critical",
    )


def test_a_recognition_issues_a_vsa_that_verifies_offline(world: AuditWorld) -> None:
    vsa = _vsa(world)
    predicate = vsa["predicate"]
    assert vsa["predicateType"] == VSA_PREDICATE
    assert [s["digest"]["sha256"] for s in vsa["subject"]] == [MODEL_DIGEST[7:], CARD_DIGEST[7:]]
    assert predicate["verifier"] == {"id": "urn:custodes:verifier:fr"}
    assert predicate["resourceUri"] == AGENT_ID
    assert predicate["policy"]["uri"] == "urn:custodes:scheme:custodes-common:1"
    assert predicate["policy"]["digest"]["sha256"] == world.scheme.digest()[7:]
    assert predicate["inputAttestations"] == [
        {"uri": f"{world.origin()}/9", "digest": {"sha256": "d" * 64}}
    ]
    assert predicate["verificationResult"] == "PASSED"
    assert predicate["verifiedLevels"] == ["CUSTODES_FINANCE_CRITICAL_RECOGNISED_FR"]
    assert not predicate["verifiedLevels"][0].startswith("SLSA_")
    envelope = sign_vsa(vsa, _fr_node(world))
    statement = verify_vsa(
        envelope, world.roster, "FR", expected_resource=AGENT_ID, expected_digests=[MODEL_DIGEST]
    )
    assert statement == vsa


def test_a_refusal_summarises_as_failed(world: AuditWorld) -> None:
    predicate = _vsa(world, "refuse")["predicate"]
    assert (predicate["verificationResult"], predicate["verifiedLevels"]) == ("FAILED", ["FAILED"])
    envelope = sign_vsa(_vsa(world, "refuse"), _fr_node(world))
    with pytest.raises(BadRequest) as caught:
        verify_vsa(envelope, world.roster, "FR")
    assert caught.value.detail == {"step": "verificationResult"}


def _step(world: AuditWorld, change: Callable[[dict[str, Any]], Any], **kw: Any) -> str:
    vsa = _vsa(world)
    change(vsa)
    envelope = sign_vsa(vsa, _fr_node(world))
    with pytest.raises(BadRequest) as caught:
        verify_vsa(envelope, world.roster, kw.pop("party", "FR"), **kw)
    assert (caught.value.code, caught.value.status) == ("vsa_invalid", 422)
    return str(caught.value.detail["step"])


def test_each_step_fails_in_order(world: AuditWorld) -> None:
    assert _step(world, lambda v: None, party="DE") == "signature"
    assert _step(world, lambda v: None, party="NZ") == "signature"
    assert _step(world, lambda v: v["subject"][0].pop("digest")) == "subject"
    assert _step(world, lambda v: None, expected_digests=["sha256:" + "0" * 64]) == "subject"
    assert _step(world, lambda v: v.update(predicateType="x")) == "predicateType"
    assert _step(world, lambda v: v["predicate"].update(verifier={"id": "urn:x"})) == "verifier"
    assert (
        _step(world, lambda v: None, expected_resource="urn:custodes:fr:agent:x") == "resourceUri"
    )
    assert _step(world, lambda v: v["predicate"].update(resourceUri="https://x")) == "resourceUri"
    assert _step(world, lambda v: v["predicate"].update(verifiedLevels=[])) == "verifiedLevels"


def test_a_vsa_signed_by_another_key_or_not_a_statement_fails(world: AuditWorld) -> None:
    envelope = sign_vsa(_vsa(world), EnvelopeSigner.generate())
    with pytest.raises(BadRequest, match="signature"):
        verify_vsa(envelope, world.roster, "FR")
    not_statement = sign_envelope(STATEMENT_TYPE, orjson.dumps({"a": 1}), [_fr_node(world)])
    with pytest.raises(BadRequest, match="in-toto Statement"):
        verify_vsa(not_statement, world.roster, "FR")


def test_levels_are_custom_and_named_after_sector_tier_and_party() -> None:
    assert recognised_level("finance", "DE") == "CUSTODES_FINANCE_RECOGNISED_DE"
    assert (
        recognised_level("health-care", "CA", "high") == "CUSTODES_HEALTH_CARE_HIGH_RECOGNISED_CA"
    )
