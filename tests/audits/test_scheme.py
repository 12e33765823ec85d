"""The common scheme: signed like the roster (a threshold of members' roster keys),
versioned, expiring; its digest as the store computes it."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, select

from custodes.audits.scheme import (
    SchemeError,
    SignedScheme,
    example_scheme,
    sign_scheme,
    verify_scheme,
)
from custodes.audits.store import apply_scheme, audit_schemes
from custodes.federation.roster import key_id
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.store.db import metadata
from tests.audits.world import AuditWorld


def _signed(
    world: AuditWorld, codes: tuple[str, ...] = ("GB", "FR", "DE"), **kw: Any
) -> dict[str, Any]:
    body = example_scheme(issued=world.now - timedelta(days=1), **kw)
    document: dict[str, Any] | None = None
    for code in codes:
        document = sign_scheme(body, world.roster_world.votes[code], document)
    assert document is not None
    return document


def test_a_scheme_signed_by_a_threshold_of_members_verifies(world: AuditWorld) -> None:
    scheme = verify_scheme(_signed(world), world.roster, now=world.now)
    assert (scheme.id, scheme.version) == ("custodes-common", 1)
    signed = scheme.document["signed"]
    assert scheme.digest() == "sha256:" + hashlib.sha256(canonical_dumps(signed)).hexdigest()
    assert scheme.ref().digest == scheme.digest()
    assert orjson.loads(scheme.to_bytes()) == scheme.document
    req = scheme.body.requirement("finance", "critical")
    assert req is not None
    assert (req.suites[0].id, req.suites[0].max_overall_upper) == ("core", 0.05)
    assert (req.suites[0].max_family_asr, req.suites[0].max_over_refusal) == (0.15, 0.2)
    assert req.no_drift_alert
    assert req.killswitch_test
    assert scheme.body.requirement("energy", "high") is not None


def test_too_few_member_signatures_are_refused_naming_who_signed(world: AuditWorld) -> None:
    with pytest.raises(SchemeError) as caught:
        verify_scheme(_signed(world, ("GB", "FR")), world.roster, now=world.now)
    assert caught.value.code == "scheme_signatures"
    assert caught.value.status == 422
    assert "2 members (FR, GB)" in caught.value.message
    assert "needs 3" in caught.value.message


def test_unknown_keys_are_ignored_and_a_bad_signature_counts_for_nothing(world: AuditWorld) -> None:
    document = _signed(world, ("GB", "FR"))
    outsider = EnvelopeSigner.generate()
    document = sign_scheme(document["signed"], outsider, document)  # not a member's key
    de = key_id(world.roster_world.votes["DE"].public_key)
    bad = {"keyid": de, "sig": "00" * 64}
    with pytest.raises(SchemeError) as caught:
        verify_scheme(
            {"signed": document["signed"], "signatures": [*document["signatures"], bad]},
            world.roster,
            now=world.now,
        )
    assert "signatures of DE do not verify" in caught.value.message
    # one member's signature listed twice is one vote
    gb = document["signatures"][0]
    doubled = {"signed": document["signed"], "signatures": [gb, gb, document["signatures"][1]]}
    with pytest.raises(SchemeError, match="2 members"):
        verify_scheme(doubled, world.roster, now=world.now)
    partner = world.roster_world.regulators["AU"]
    with pytest.raises(SchemeError, match="2 members"):
        verify_scheme(
            sign_scheme(document["signed"], partner, document), world.roster, now=world.now
        )


def test_an_altered_scheme_loses_its_signatures(world: AuditWorld) -> None:
    document = _signed(world)
    signed = dict(document["signed"])
    signed["partners_recognise"] = True
    with pytest.raises(SchemeError, match="0 members"):
        verify_scheme(
            {"signed": signed, "signatures": document["signatures"]}, world.roster, now=world.now
        )


def test_an_expired_scheme_is_refused(world: AuditWorld) -> None:
    document = _signed(world, expires=world.now - timedelta(seconds=1))
    with pytest.raises(SchemeError) as caught:
        verify_scheme(document, world.roster, now=world.now)
    assert caught.value.code == "scheme_expired"


def test_versions_follow_one_another(world: AuditWorld) -> None:
    v1 = verify_scheme(_signed(world), world.roster, now=world.now)
    v2 = verify_scheme(_signed(world, version=2), world.roster, now=world.now, previous=v1)
    assert v2.version == 2
    assert verify_scheme(v1.document, world.roster, now=world.now, previous=v1) == v1
    for doc, message in (
        (_signed(world, version=3), "does not follow version 1"),
        (_signed(world, version=1, countersignatures=3), "differs from the version 1"),
        (_signed(world, version=2, scheme_id="another"), "not 'custodes-common'"),
    ):
        with pytest.raises(SchemeError, match=message) as caught:
            verify_scheme(doc, world.roster, now=world.now, previous=v1)
        assert caught.value.code == "scheme_version"


def test_every_failed_rule_is_listed(world: AuditWorld) -> None:
    v1 = verify_scheme(_signed(world), world.roster, now=world.now)
    document = _signed(world, ("GB",), version=5, expires=world.now - timedelta(hours=1))
    with pytest.raises(SchemeError) as caught:
        verify_scheme(document, world.roster, now=world.now, previous=v1)
    codes = [f["code"] for f in caught.value.detail["failures"]]
    assert codes == ["scheme_signatures", "scheme_version", "scheme_expired"]
    assert caught.value.code == "scheme_signatures"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "a scheme is"),
        ({"signed": {}, "signatures": "x"}, "signatures are"),
        ({"signed": {"id": "x"}, "signatures": []}, "invalid at"),
        ({"signed": [], "signatures": []}, "signed part"),
    ],
)
def test_malformed_schemes_are_refused(world: AuditWorld, document: Any, message: str) -> None:
    with pytest.raises(SchemeError, match=message) as caught:
        verify_scheme(document, world.roster, now=world.now)
    assert caught.value.code == "scheme_invalid"


def test_a_signer_adds_its_signature_to_the_document_the_others_signed(world: AuditWorld) -> None:
    document = _signed(world, ("GB",))
    other = example_scheme(issued=world.now, version=9)
    with pytest.raises(SchemeError, match="not the scheme body given"):
        sign_scheme(other, world.roster_world.votes["FR"], document)
    again = sign_scheme(document["signed"], world.roster_world.votes["GB"], document)
    assert len(again["signatures"]) == 1


def test_the_store_digests_a_scheme_as_the_scheme_does(world: AuditWorld) -> None:
    scheme = verify_scheme(_signed(world), world.roster, now=world.now)
    engine = create_engine("sqlite://")
    metadata.create_all(engine, tables=[audit_schemes])
    with engine.begin() as conn:
        apply_scheme(conn, 7, scheme.to_bytes())
        row = conn.execute(select(audit_schemes)).one()
    engine.dispose()
    assert row.digest == scheme.digest()
    assert isinstance(scheme, SignedScheme)
