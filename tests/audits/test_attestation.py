"""Audit attestations: the in-toto Statement, its DSSE envelope, countersigning and the
(t, n) count of member parties that countersigned."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.audits.attestation import (
    build_statement,
    countersign,
    countersigning_parties,
    open_attestation,
    sign_attestation,
    signed_by,
)
from custodes.audits.models import AUDIT_PREDICATE, STATEMENT_TYPE, STATEMENT_V1, attestation_id
from custodes.audits.store import parse_statement
from custodes.errors import BadRequest
from custodes.federation.roster import verify_next
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, EnvelopeSigner, Signature
from tests.audits.world import AGENT_ID, CARD_DIGEST, CODE_DIGEST, MODEL_DIGEST, AuditWorld
from tests.federation.world import set_status


def _statement(world: AuditWorld, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "agent": world.agent,
        "model_digest": MODEL_DIGEST,
        "card_digest": CARD_DIGEST,
        "code_digest": CODE_DIGEST,
        "scheme": world.scheme,
        "auditor": world.auditor_ref(),
        "evidence": world.evidence_items,
        "issued": world.now,
    }
    values.update(changes)
    return build_statement(**values)


def test_the_statement_names_model_card_and_code_and_the_predicate(world: AuditWorld) -> None:
    statement = _statement(world)
    assert statement["_type"] == STATEMENT_V1
    assert statement["predicateType"] == AUDIT_PREDICATE
    assert statement["subject"] == [
        {"name": "model:model-gb-1", "digest": {"sha256": MODEL_DIGEST[7:]}},
        {"name": f"agentcard:{AGENT_ID}", "digest": {"sha256": CARD_DIGEST[7:]}},
        {"name": f"code:{AGENT_ID}", "digest": {"sha256": CODE_DIGEST[7:]}},
    ]
    predicate = statement["predicate"]
    assert predicate["scheme"] == world.scheme.ref().model_dump(mode="json")
    assert predicate["agent"]["operator"] == "operator:gb-bank"
    assert predicate["suites"] == ["core"]
    assert [e["entry"] for e in predicate["evidence"]] == [
        r.model_dump(mode="json") for r in world.refs
    ]
    opened = open_attestation(sign_attestation(statement, world.auditor))
    assert opened.predicate.expires - opened.predicate.issued == timedelta(days=365)
    assert opened.subject("model:") == MODEL_DIGEST
    assert opened.subject("agentcard:") == CARD_DIGEST


def test_a_sector_the_scheme_does_not_cover_cannot_be_attested(world: AuditWorld) -> None:
    health = world.agent.model_copy(update={"sector": "health"})
    with pytest.raises(BadRequest) as caught:
        _statement(world, agent=health)
    assert (caught.value.code, caught.value.status) == ("scheme_no_requirement", 422)


def test_a_malformed_digest_is_refused(world: AuditWorld) -> None:
    with pytest.raises(BadRequest, match="sha256:<64 lowercase hex>"):
        _statement(world, model_digest="md5:abc")


def test_the_envelope_signs_the_canonical_statement(world: AuditWorld) -> None:
    statement = _statement(world)
    envelope = sign_attestation(statement, world.auditor)
    assert envelope.payload_type == STATEMENT_TYPE
    assert envelope.payload == canonical_dumps(statement)
    assert signed_by(envelope, world.auditor.public_key)
    assert not signed_by(envelope, EnvelopeSigner.generate().public_key)
    opened = open_attestation(envelope)
    assert opened.id == attestation_id(envelope.payload)
    assert opened.statement == statement
    # the store projects what this module builds
    assert parse_statement(envelope.payload) == (statement, AUDIT_PREDICATE)


def _envelope(world: AuditWorld, payload: Any, payload_type: str = STATEMENT_TYPE) -> Envelope:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Envelope(payload_type, data, (Signature("k", bytes(64)),))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "not an in-toto"),
        (lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"), "predicateType"),
        (lambda s: s.update(subject=[]), "non-empty list"),
        (lambda s: s.update(subject=[{"name": "x", "digest": {"sha256": "AB"}}]), "lowercase hex"),
        (lambda s: s["predicate"].pop("expires"), "predicate is invalid at expires"),
        (lambda s: s["subject"].append(dict(s["subject"][0])), "listed twice"),
    ],
)
def test_malformed_attestations_are_refused(world: AuditWorld, change: Any, message: str) -> None:
    statement = _statement(world)
    change(statement)
    with pytest.raises(BadRequest, match=message) as caught:
        open_attestation(_envelope(world, statement))
    assert (caught.value.code, caught.value.status) == ("invalid_attestation", 422)


def test_a_payload_that_is_not_a_statement_is_refused(world: AuditWorld) -> None:
    with pytest.raises(BadRequest, match="not JSON"):
        open_attestation(_envelope(world, b"{not json"))
    with pytest.raises(BadRequest, match="payloadType"):
        open_attestation(_envelope(world, _statement(world), "application/json"))


def test_countersignatures_add_signatures_over_the_same_payload(world: AuditWorld) -> None:
    fr = world.roster_world.regulators["FR"]
    envelope = countersign(world.envelope, fr)
    assert envelope.payload == world.envelope.payload
    assert len(envelope.signatures) == 2
    assert signed_by(envelope, fr.public_key)
    assert signed_by(envelope, world.auditor.public_key)
    with pytest.raises(BadRequest) as caught:
        countersign(envelope, fr)
    assert (caught.value.code, caught.value.status) == ("already_signed", 409)
    with pytest.raises(BadRequest, match="already signed"):
        countersign(envelope, world.auditor)


def test_member_parties_count_once_each(world: AuditWorld) -> None:
    regs = world.roster_world.regulators
    envelope = world.envelope
    for code in ("FR", "DE", "AU"):
        envelope = countersign(envelope, regs[code])
    assert countersigning_parties(envelope, world.roster) == {"FR", "DE"}  # AU is a partner
    assert countersigning_parties(envelope, world.roster, exclude={"DE"}) == {"FR"}
    doubled = replace(envelope, signatures=(*envelope.signatures, envelope.signatures[1]))
    assert countersigning_parties(doubled, world.roster) == {"FR", "DE"}
    assert countersigning_parties(world.envelope, world.roster) == set()


def test_keyids_are_hints_and_bad_signatures_are_skipped(world: AuditWorld) -> None:
    fr = world.roster_world.regulators["FR"].sign(world.envelope.signed_bytes())
    de = world.roster_world.regulators["DE"]
    envelope = replace(
        world.envelope,
        signatures=(
            *world.envelope.signatures,
            Signature(de.keyid, bytes(64)),  # DE's keyid, a signature that does not verify
            Signature(de.keyid, fr.sig),  # FR's signature under DE's keyid
        ),
    )
    assert countersigning_parties(envelope, world.roster) == {"FR"}


def test_a_suspended_members_countersignature_does_not_count(world: AuditWorld) -> None:
    envelope = countersign(
        countersign(world.envelope, world.roster_world.regulators["CA"]),
        world.roster_world.regulators["FR"],
    )
    suspended = verify_next(
        world.roster, world.roster_world.next(world.roster, change=set_status("CA", "suspended"))
    )
    assert countersigning_parties(envelope, world.roster) == {"CA", "FR"}
    assert countersigning_parties(envelope, suspended) == {"FR"}
    assert base64.b64decode(world.grant.auditor_key or "") == world.auditor.public_key


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    signers=st.lists(st.sampled_from(["GB", "FR", "DE", "CA", "AU"]), unique=True),
    scramble=st.booleans(),
    data=st.data(),
)
def test_the_parties_counted_are_exactly_the_members_that_signed(
    world: AuditWorld, signers: list[str], scramble: bool, data: st.DataObject
) -> None:
    message = world.envelope.signed_bytes()
    signatures = [world.roster_world.regulators[c].sign(message) for c in signers]
    if scramble:  # keyids are hints: wrong or swapped ones change nothing
        signatures = [Signature(f"hint-{i}", s.sig) for i, s in enumerate(signatures)]
    order = data.draw(st.permutations([*world.envelope.signatures, *signatures]))
    envelope = replace(world.envelope, signatures=tuple(order))
    members = {"GB", "FR", "DE", "CA"}
    assert countersigning_parties(envelope, world.roster) == set(signers) & members
