"""Interoperability: our attestations and VSAs are what other tools read.

- the in-toto-attestation Python bindings (0.9.3) parse the Statement and the VSA
  (unknown fields ignored: the 0.9.3 VSA protobuf lacks ``verifier.version``, and
  declares ``verified_levels`` as one string where SLSA v1 has a list) and validate
  the Statement;
- securesystemslib's DSSE ``Envelope.verify`` checks the envelope independently,
  including a (2, n) threshold over a countersigned envelope. securesystemslib matches
  a signature to a key by keyid (its issue #416), so each key is built with the keyid
  our envelopes carry: the hex SHA-256 of the raw Ed25519 key (``key_thumbprint``).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf import json_format
from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from custodes.audits.attestation import countersign
from custodes.audits.models import AUDIT_PREDICATE, VSA_PREDICATE
from custodes.audits.vsa import build_vsa, sign_vsa, verifier_id
from custodes.ledger.dsse import Envelope, EnvelopeSigner, key_thumbprint
from custodes.ledger.keys import load_or_create_entry_signer
from tests.audits.test_vsa import _decision
from tests.audits.world import MODEL_DIGEST, AuditWorld


def _parse_statement(payload: bytes) -> Statement:
    proto = json_format.Parse(payload, statement_pb2.Statement(), ignore_unknown_fields=True)
    statement = Statement.copy_from_pb(proto)
    statement.validate()
    return statement


def _sslib_key(public_key: bytes) -> SSlibKey:
    crypto = Ed25519PublicKey.from_public_bytes(public_key)
    return SSlibKey.from_crypto(crypto, keyid=key_thumbprint(public_key))


def _sslib(envelope: Envelope) -> SslibEnvelope:
    return SslibEnvelope.from_dict(copy.deepcopy(envelope.to_json()))


def test_the_bindings_parse_and_validate_the_attestation(world: AuditWorld) -> None:
    statement = _parse_statement(world.envelope.payload)
    assert statement.pb.predicate_type == AUDIT_PREDICATE
    assert [s.name for s in statement.pb.subject] == [
        "model:model-gb-1",
        f"agentcard:{world.agent.id}",
        f"code:{world.agent.id}",
    ]
    assert statement.pb.subject[0].digest["sha256"] == MODEL_DIGEST[7:]
    predicate = json_format.MessageToDict(statement.pb.predicate)
    assert predicate["scheme"]["digest"] == world.scheme.digest()
    assert predicate["evidence"][0]["entry"]["leaf_hash"] == world.refs[0].leaf_hash


def test_the_bindings_parse_the_vsa(world: AuditWorld) -> None:
    decision = _decision(world)
    vsa = build_vsa(
        decision=decision,
        verifier_id=verifier_id("FR"),
        attestation_digest=decision.attestation,
        attestation_entry=decision.attestation_entry,
        scheme=world.scheme,
        time_verified=world.now,
        risk_tier="critical",
    )
    vsa["predicate"]["verifier"]["version"] = {"custodes": "0.1.0"}  # SLSA 1.1, not in 0.9.3
    node = load_or_create_entry_signer(world.roster_world.data_dir("FR") / "node.key", "node")[1]
    envelope = sign_vsa(vsa, node)
    statement = _parse_statement(envelope.payload)
    assert statement.pb.predicate_type == VSA_PREDICATE
    # 0.9.3's vsa.proto declares verified_levels as one string; SLSA VSA v1 (and we) send
    # a list of levels, so the binding reads every other field, and the levels are checked
    # from the Statement it parsed.
    field = vsa_pb2.VerificationSummary.DESCRIPTOR.fields_by_name["verified_levels"]
    assert not field.is_repeated
    predicate = {k: v for k, v in vsa["predicate"].items() if k != "verifiedLevels"}
    summary = json_format.Parse(
        orjson.dumps(predicate), vsa_pb2.VerificationSummary(), ignore_unknown_fields=True
    )
    parsed = json_format.MessageToDict(statement.pb.predicate)
    assert parsed["verifiedLevels"] == ["CUSTODES_FINANCE_CRITICAL_RECOGNISED_FR"]
    assert summary.verifier.id == "urn:custodes:verifier:fr"
    assert summary.resource_uri == world.agent.id
    assert summary.verification_result == "PASSED"
    assert summary.policy.digest["sha256"] == world.scheme.digest()[7:]
    assert summary.time_verified.ToDatetime().isoformat().startswith(str(world.now.date()))
    accepted = _sslib(envelope).verify([_sslib_key(node.public_key)], 1)
    assert list(accepted) == [node.keyid]


def test_securesystemslib_verifies_the_auditors_signature(world: AuditWorld) -> None:
    accepted = _sslib(world.envelope).verify([_sslib_key(world.auditor.public_key)], 1)
    assert list(accepted) == [world.auditor.keyid]
    stranger = EnvelopeSigner.generate()
    with pytest.raises(VerificationError):
        _sslib(world.envelope).verify([_sslib_key(stranger.public_key)], 1)


def test_securesystemslib_checks_a_two_of_n_threshold_over_countersignatures(
    world: AuditWorld,
) -> None:
    regs = world.roster_world.regulators
    keys = [_sslib_key(regs[c].public_key) for c in ("GB", "FR", "DE", "CA")]
    one = countersign(world.envelope, regs["FR"])
    with pytest.raises(VerificationError, match="Found: 1, Expected 2"):
        _sslib(one).verify(keys, 2)
    two = countersign(one, regs["DE"])
    accepted = _sslib(two).verify(keys, 2)
    assert set(accepted) == {regs["FR"].keyid, regs["DE"].keyid}


def test_securesystemslib_rejects_a_tampered_payload(world: AuditWorld) -> None:
    data: dict[str, Any] = world.envelope.to_json()
    statement = orjson.loads(world.envelope.payload)
    statement["predicate"]["result"] = "PASSED "

    data["payload"] = base64.b64encode(orjson.dumps(statement)).decode()
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(data).verify([_sslib_key(world.auditor.public_key)], 1)
