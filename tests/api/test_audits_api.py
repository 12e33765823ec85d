"""/api/v1/audits on one GB node: the issue's bad inputs are 4xx listing every failed
condition and write nothing; a good attestation is logged, countersigned and
recognised with a VSA; a withdrawn accreditation withdraws the recognition.

One node per module and database (SQLite, PostgreSQL); every refusal compares the log
size before and after its own request, so test order does not matter.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from custodes.audits.attestation import countersign
from custodes.audits.models import (
    ACCREDITATION_TYPE,
    ATTESTATION_STATUS_TYPE,
    AccreditationScope,
    AttestationStatus,
    AuditorRef,
    attestation_id,
)
from custodes.audits.scheme import example_scheme, sign_scheme
from custodes.audits.vsa import verify_vsa
from custodes.federation.party import roster_signer
from custodes.ledger.dsse import Envelope, EnvelopeSigner, pae, parse_envelope
from custodes.registry.projection import load_agent
from custodes.store.db import read_tx
from tests.api.support import assert_error
from tests.audits.node_world import (
    AUDITOR,
    AUDITOR_KEY,
    NodeWorld,
    accreditation,
    entry_ref,
    node_world,
    now,
    signed,
)
from tests.databases import database_url, node_settings
from tests.enrol import OPERATOR_KEY, REGULATOR_KEY, principal
from tests.integration.procs import wait_until


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeWorld]:
    base: Path = tmp_path_factory.mktemp("audits")
    settings = node_settings(base, database_url(request, base, "audits_"))
    with node_world(settings, base) as made:
        yield made


def refused(world: NodeWorld, response: httpx.Response, status: int, code: str) -> set[str]:
    """Assert the refusal and return the failed conditions it lists."""
    detail = assert_error(response, status, code)
    failures = detail["failures"]
    assert failures
    assert all(f["reason"] for f in failures)
    return {f["condition"] for f in failures}


def attest_refused(world: NodeWorld, envelope: Envelope, status: int = 422) -> set[str]:
    before = world.logged()
    conditions = refused(
        world, world.post("/attestations", AUDITOR, envelope), status, "attestation_refused"
    )
    assert world.logged() == before
    return conditions


def test_an_expired_attestation_is_refused(world: NodeWorld) -> None:
    envelope = world.attest(issued=now() - timedelta(days=400))
    assert "expired" in attest_refused(world, envelope)


def test_a_tampered_attestation_is_refused(world: NodeWorld) -> None:
    good = world.attest()
    statement = orjson.loads(good.payload)
    statement["predicate"]["evidence"][0]["summary"]["overall_asr"] = 0.0
    tampered = Envelope(good.payload_type, orjson.dumps(statement), good.signatures)
    before = world.logged()
    answer = world.post("/attestations", AUDITOR, tampered)
    assert answer.status_code in (403, 422), answer.text
    assert "signature" in {f["condition"] for f in answer.json()["error"]["detail"]["failures"]}
    assert world.logged() == before


def test_an_attestation_with_wrong_digests_is_refused(world: NodeWorld) -> None:
    envelope = world.attest(model_digest="sha256:" + "ee" * 32)
    assert "subject" in attest_refused(world, envelope)


def test_an_unaccredited_auditor_is_refused(world: NodeWorld) -> None:
    auditor = world.statement()["predicate"]["auditor"]
    ref = AuditorRef.model_validate({**auditor, "accreditation": "acc:gb:nobody"})
    assert "accreditation" in attest_refused(world, world.attest(auditor=ref))


def _grant(world: NodeWorld, acc_id: str, **changes: Any) -> Any:
    record = accreditation(id=acc_id, **changes)
    answer = world.post(
        "/accreditations", "regulator:gb", signed(record, ACCREDITATION_TYPE, REGULATOR_KEY)
    )
    if answer.status_code == 409:  # granted by an earlier test of this module
        index = world.http.get(f"/api/v1/audits/accreditations/{acc_id}").json()["entry_index"]
    else:
        assert answer.status_code == 201, answer.text
        index = answer.json()["index"]
    auditor = world.statement()["predicate"]["auditor"]
    return AuditorRef.model_validate(
        {
            **auditor,
            "accreditation": acc_id,
            "accreditation_entry": entry_ref(world.node, index).model_dump(),
        }
    )


def test_an_out_of_scope_attestation_is_refused(world: NodeWorld) -> None:
    ref = _grant(
        world, "acc:gb:health-only", scope=AccreditationScope(sectors=("health",), suites=("core",))
    )
    assert "scope" in attest_refused(world, world.attest(auditor=ref))


def test_an_auditor_attesting_its_own_operators_agent_is_refused(world: NodeWorld) -> None:
    ref = _grant(world, "acc:gb:affiliated", affiliations=("operator:acme",))
    assert "conflict_of_interest" in attest_refused(world, world.attest(auditor=ref))


def test_a_regulator_cannot_send_an_attestation(world: NodeWorld) -> None:
    before = world.logged()
    answer = world.post("/attestations", "regulator:gb", world.attest())
    assert answer.status_code == 403
    assert world.logged() == before


def test_an_accreditation_of_another_jurisdiction_is_refused(world: NodeWorld) -> None:
    record = accreditation(id="acc:fr:someone", jurisdiction="FR")
    before = world.logged()
    answer = world.post(
        "/accreditations", "regulator:gb", signed(record, ACCREDITATION_TYPE, REGULATOR_KEY)
    )
    assert "jurisdiction" in refused(world, answer, 422, "wrong_jurisdiction")
    assert world.logged() == before


def test_an_auditor_cannot_accredit(world: NodeWorld) -> None:
    record = accreditation(id="acc:gb:self")
    before = world.logged()
    answer = world.post("/accreditations", AUDITOR, signed(record, ACCREDITATION_TYPE, AUDITOR_KEY))
    assert "role" in refused(world, answer, 403, "wrong_role")
    assert world.logged() == before


def test_an_unknown_attestation_is_404(world: NodeWorld) -> None:
    answer = world.http.post(
        "/api/v1/audits/recognitions/check",
        content=orjson.dumps({"attestation": "sha256:" + "0" * 64}),
    )
    assert_error(answer, 404, "unknown_attestation")


def test_an_oversized_body_is_413(world: NodeWorld) -> None:
    answer = world.http.post(
        "/api/v1/audits/attestations",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"Authorization": f"Bearer {world.tokens[AUDITOR]}"},
    )
    assert answer.status_code == 413


def test_attest_countersign_recognise_and_withdraw(world: NodeWorld) -> None:
    envelope = world.attest(code_digest="sha256:" + "c1" * 32)
    aid = attestation_id(envelope.payload)
    answer = world.post("/attestations", AUDITOR, envelope)
    assert answer.status_code == 201, answer.text
    assert answer.json()["id"] == aid

    # Under-countersigned: an automatic recognition needs the scheme's k (1) members.
    before = world.logged()
    automatic = world.decision(envelope, aid, automatic=True)
    conditions = refused(
        world, world.post("/recognitions", "regulator:gb", automatic), 422, "not_recognisable"
    )
    assert "countersignatures" in conditions
    assert world.logged() == before

    signature = countersign(envelope, REGULATOR_KEY).signatures[-1]
    body = {"keyid": signature.keyid, "sig": base64.b64encode(signature.sig).decode()}
    bad = {**body, "sig": base64.b64encode(REGULATOR_KEY.sign(b"other").sig).decode()}
    before = world.logged()
    assert world.post(f"/attestations/{aid}/countersign", "regulator:gb", bad).status_code == 422
    assert world.logged() == before
    answer = world.post(f"/attestations/{aid}/countersign", "regulator:gb", body)
    assert answer.status_code == 201, answer.text
    assert signature.sig == REGULATOR_KEY.sign(pae(envelope.payload_type, envelope.payload)).sig

    check = world.http.post(
        "/api/v1/audits/recognitions/check",
        content=orjson.dumps({"attestation": aid, "automatic": True}),
    ).json()
    assert check["failures"] == [], check

    decision = world.post("/recognitions", "regulator:gb", world.decision(envelope, aid))
    assert decision.status_code == 201, decision.text
    vsa = parse_envelope(decision.json()["vsa"])
    roster = world.node.federation.roster
    assert roster is not None
    verified = verify_vsa(vsa, roster, "GB", expected_resource=None)
    assert verified["predicate"]["verificationResult"] == "PASSED"
    again = world.post("/recognitions", "regulator:gb", world.decision(envelope, aid))
    assert again.status_code == 409

    decisions = world.http.get(
        "/api/v1/audits/recognitions", params={"agent_id": world.agent_id}
    ).json()["decisions"]
    mine = [d for d in decisions if d["attestation"] == aid]
    assert [d["status"] for d in mine] == ["recognised"]

    # The auditor withdraws its attestation: the watch withdraws the recognition.
    status = AttestationStatus(
        attestation=aid, agent_id=world.agent_id, reason="re-audit", actor=AUDITOR, at=now()
    )
    answer = world.post(
        f"/attestations/{aid}/withdraw",
        AUDITOR,
        signed(status, ATTESTATION_STATUS_TYPE, AUDITOR_KEY),
    )
    assert answer.status_code == 201, answer.text

    def withdrawn() -> bool:
        rows = world.http.get(
            "/api/v1/audits/recognitions", params={"agent_id": world.agent_id}
        ).json()["decisions"]
        return any(d["attestation"] == aid and d["status"] == "withdrawn" for d in rows)

    wait_until("the recognition withdrawn", withdrawn, timeout=30)
    latest = next(
        d
        for d in world.http.get("/api/v1/audits/recognitions").json()["decisions"]
        if d["attestation"] == aid
    )
    assert latest["decision"]["automatic"] is True
    assert [r["condition"] for r in latest["decision"]["reasons"]] == ["withdrawn"]


def test_a_suspended_accreditation_refuses_new_attestations(world: NodeWorld) -> None:
    ref = _grant(world, "acc:gb:suspendable")
    record = accreditation(id="acc:gb:suspendable", op="suspend", reason="under review")
    answer = world.post(
        "/accreditations", "regulator:gb", signed(record, ACCREDITATION_TYPE, REGULATOR_KEY)
    )
    assert answer.status_code in (201, 409), answer.text
    assert "accreditation" in attest_refused(world, world.attest(auditor=ref))


def test_a_refusal_lists_its_reasons_and_a_regulator_withdraws_a_recognition(
    world: NodeWorld,
) -> None:
    envelope = world.attest(code_digest="sha256:" + "c3" * 32)
    aid = attestation_id(envelope.payload)
    assert world.post("/attestations", AUDITOR, envelope).status_code == 201
    recognised = world.post("/recognitions", "regulator:gb", world.decision(envelope, aid))
    assert recognised.status_code == 201, recognised.text
    reasons = [{"condition": "policy", "reason": "a second look is due"}]
    before = world.logged()
    refusal = world.post(
        "/recognitions",
        "regulator:gb",
        world.decision(envelope, aid, op="refuse", reasons=reasons, valid_until=None),
    )
    assert_error(refusal, 409, "already_recognised")  # a recognition is withdrawn, not refused
    assert world.logged() == before
    withdrawal = world.decision(envelope, aid, op="withdraw", reasons=reasons, valid_until=None)
    answer = world.post("/recognitions", "regulator:gb", withdrawal)
    assert answer.status_code == 201, answer.text
    again = world.post("/recognitions", "regulator:gb", withdrawal)
    assert_error(again, 409, "not_recognised")
    refused = world.post(
        "/recognitions",
        "regulator:gb",
        world.decision(envelope, aid, op="refuse", reasons=reasons, valid_until=None),
    )
    assert refused.status_code == 201, refused.text
    rows = world.http.get("/api/v1/audits/recognitions", params={"agent_id": world.agent_id})
    mine = [d for d in rows.json()["decisions"] if d["attestation"] == aid]
    assert [(d["status"], d["automatic"]) for d in mine] == [("refused", False)]


def test_an_attestation_for_an_unknown_agent_is_404(world: NodeWorld) -> None:
    agent = world.statement()["predicate"]["agent"]
    with read_tx(world.node.engine) as conn:
        record = load_agent(conn, agent["id"])
    stranger = record.model_copy(update={"id": "urn:custodes:gb:agent:nobody"})
    before = world.logged()
    answer = world.post("/attestations", AUDITOR, world.attest(agent=stranger))
    assert_error(answer, 404, "unknown_agent")
    assert world.logged() == before


def test_a_scheme_without_the_members_signatures_or_out_of_order_is_refused(
    world: NodeWorld,
) -> None:
    unsigned = {"signed": example_scheme(version=2).model_dump(mode="json", by_alias=True)}
    unsigned["signatures"] = []
    before = world.logged()
    answer = world.post("/schemes", "regulator:gb", unsigned)
    detail = assert_error(answer, 422, "scheme_signatures")
    assert {f["code"] for f in detail["failures"]} == {"scheme_signatures"}
    skipped = sign_scheme(example_scheme(version=3), roster_signer(world.roster_dir))
    assert_error(world.post("/schemes", "regulator:gb", skipped), 422, "scheme_version")
    again = world.post("/schemes", "regulator:gb", world.scheme.document)
    assert_error(again, 409, "scheme_in_force")
    assert world.post("/schemes", AUDITOR, world.scheme.document).status_code == 403
    assert world.logged() == before
    assert world.http.get("/api/v1/audits/schemes/current").json()["version"] == 1


def test_only_a_roster_regulator_countersigns_and_only_the_auditor_or_its_regulator_withdraws(
    world: NodeWorld,
) -> None:
    envelope = world.attest(code_digest="sha256:" + "c4" * 32)
    aid = attestation_id(envelope.payload)
    assert world.post("/attestations", AUDITOR, envelope).status_code == 201
    other = EnvelopeSigner.from_seed(b"another-gb-regulator-not-vouched")
    principal(world.node, "regulator:gb-deputy", "regulator", other)
    world.tokens["regulator:gb-deputy"] = str(
        world.node.tokens.issue("regulator:gb-deputy", None, 600)["token"]
    )
    signature = countersign(envelope, other).signatures[-1]
    body = {"keyid": signature.keyid, "sig": base64.b64encode(signature.sig).decode()}
    before = world.logged()
    answer = world.post(f"/attestations/{aid}/countersign", "regulator:gb-deputy", body)
    assert "countersignatures" in refused(world, answer, 403, "not_a_roster_regulator")
    status = AttestationStatus(
        attestation=aid, agent_id=world.agent_id, reason="no", actor="operator:acme", at=now()
    )
    answer = world.post(
        f"/attestations/{aid}/withdraw",
        "operator:acme",
        signed(status, ATTESTATION_STATUS_TYPE, OPERATOR_KEY),
    )
    assert "role" in refused(world, answer, 403, "wrong_role")
    assert world.logged() == before
