"""Mutual recognition across a real alliance: GB, FR and DE members, AU a partner.

A GB-accredited auditor audits a GB critical finance agent: its core evaluation result
is published on GB's log, its attestation logged there. GB's regulator countersigns and
recognises it (with a VSA that verifies offline), FR's countersigns on FR's node; FR and
DE, set to recognise automatically with 2 of 3 members' countersignatures, recognise it
from their logs and mirrors alone; AU's regulator may not
decide (403, failure ``partner``). Then a drift alert on the agent, published on GB,
withdraws the recognition on every member.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from custodes.audits.attestation import build_statement, sign_attestation
from custodes.audits.models import (
    ACCREDITATION_TYPE,
    AuditorRef,
    EvidenceItem,
    LogRef,
    attestation_id,
)
from custodes.audits.scheme import example_scheme, sign_scheme, summarise_result, verify_scheme
from custodes.audits.vsa import verify_vsa
from custodes.client import Client
from custodes.errors import CustodesError
from custodes.evals.results import RESULT_TYPE, DriftAlert
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope
from custodes.ledger.keys import entry_key_string, write_secret
from custodes.ledger.merkle import leaf_hash
from custodes.registry.models import AgentRecord, ModelRecord
from custodes.sdk.bootstrap import register_principal
from tests.audits.node_world import (
    AUDITOR,
    AUDITOR_KEY,
    CARD,
    CODE_DIGEST,
    MODEL_DIGEST,
    accreditation,
    card_digest,
    eval_result,
    signed,
)
from tests.integration.alliance import Alliance, running_alliance
from tests.integration.procs import ADMIN_TOKEN, run_cli, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

PARTIES = {"GB": "member", "FR": "member", "DE": "member", "AU": "partner"}
AUTO = {"auto_recognise": "true"}
AGENT = "urn:custodes:gb:agent:trader"


def _scheme(alliance: Alliance) -> dict[str, Any]:
    """The common scheme (automatic recognition needs 2 members' countersignatures),
    signed by every member's roster key. The kill-switch
    conformance test is the gate's (another suite logs it); here the evidence is the
    core evaluation result alone."""
    body = example_scheme(countersignatures=2)
    body = body.model_copy(
        update={
            "requirements": tuple(
                r.model_copy(update={"killswitch_test": False}) for r in body.requirements
            )
        }
    )
    document: dict[str, Any] | None = None
    for vote in alliance.votes.values():
        document = sign_scheme(body, vote, document)
    assert document is not None
    return document


def _register_agent(operator: Client) -> AgentRecord:
    model = ModelRecord(
        id="model:trader",
        provider="Acme",
        name="trader",
        version="1",
        digest=MODEL_DIGEST,
        training_compute_flop=1e24,
    )
    operator.register_model(model)
    record = AgentRecord(
        id=AGENT,
        name="trader",
        version="1.0",
        operator=str(operator.principal),
        home_jurisdiction="GB",
        operating_jurisdictions=("FR", "DE"),
        sector="finance",
        risk_tier="critical",
        autonomy_level=3,
        intended_purpose="automated trading within a mandate",
        model=model.id,
    )
    operator.register_agent(record, [EnvelopeSigner.generate().public_key], agent_card=CARD)
    return record


def _standing(node: Client, aid: str) -> str | None:
    for decision in node.recognitions(AGENT)["decisions"]:
        if decision["attestation"] == aid:
            return str(decision["status"])
    return None


def _flags(alliance: Alliance, code: str, tmp: Path) -> list[str]:
    """--node, --as, --token, --key for ``code``'s regulator (its key in a file)."""
    node = alliance[code]
    key_file = tmp / f"regulator-{code.lower()}.key"
    write_secret(key_file, entry_key_string(node.regulator_id, node.regulator_key))
    admin = node.admin()
    try:
        token = str(admin.issue_token(node.regulator_id)["token"])
    finally:
        admin.close()
    return ["--node", node.url, "--as", node.regulator_id, "--token", token, "--key", str(key_file)]


def _cli(*args: str) -> str:
    done = run_cli(["audit", *args])
    assert done.returncode == 0, done.stderr
    return done.stdout


def _automatic_failures(url: str, aid: str) -> list[str]:
    """What ``custodes audit check --automatic`` lists (it exits 1 when any)."""
    done = run_cli(["audit", "check", aid, "--automatic", "--node", url, "--output", "json"])
    failures = orjson.loads(done.stdout)["failures"]
    assert done.returncode == (1 if failures else 0), done.stderr
    return [f["condition"] for f in failures]


def _has_scheme(client: Client) -> bool:
    try:
        return bool(client.scheme()["version"])
    except CustodesError:
        return False


def _drift_alert() -> DriftAlert:
    return DriftAlert(
        agent_id=AGENT,
        baseline_window=(0, 100),
        current_window=(100, 200),
        baseline_n=100,
        current_n=100,
        categories=("approve", "decline"),
        baseline_distribution=(0.5, 0.5),
        current_distribution=(0.1, 0.9),
        d=0.4,
        d_raw=0.4,
        p=0.001,
        level=0.05,
        permutations=1000,
        alert=True,
        detected_at=datetime.now(UTC),
    )


def test_recognised_at_home_automatically_elsewhere_and_withdrawn_everywhere_on_drift(
    tmp_path: Path,
) -> None:
    with running_alliance(tmp_path, parties=PARTIES, per_node={"FR": AUTO, "DE": AUTO}) as alliance:
        gb = alliance["GB"].bootstrap()
        regulator, operator = gb.regulator, gb.operator
        agent = _register_agent(operator)
        token = register_principal(
            regulator, ADMIN_TOKEN, AUDITOR, role="auditor", jurisdiction="GB", key=AUDITOR_KEY
        )
        auditor = regulator.acting_as(AUDITOR, token, AUDITOR_KEY)
        document = _scheme(alliance)
        regulator.apply_scheme(document)
        record = accreditation()  # the client signs the same bytes (Ed25519 is deterministic)
        grant = signed(record, ACCREDITATION_TYPE, alliance["GB"].regulator_key)
        granted = regulator.accredit(record)
        origin = alliance["GB"].party.origin
        grant_ref = LogRef(
            origin=origin, index=granted["index"], leaf_hash=leaf_hash(grant.to_bytes()).hex()
        )
        result = eval_result(AGENT)
        published = auditor.publish(result)
        entry = auditor.eval_result(published)["entry"]
        result_ref = LogRef(
            origin=origin,
            index=published,
            leaf_hash=leaf_hash(parse_envelope(entry).to_bytes()).hex(),
        )
        assert parse_envelope(entry).payload_type == RESULT_TYPE
        scheme = verify_scheme(document, alliance.roster, now=datetime.now(UTC))
        statement = build_statement(
            agent=agent,
            model_digest=MODEL_DIGEST,
            card_digest=card_digest(),
            code_digest=CODE_DIGEST,
            scheme=scheme,
            auditor=AuditorRef(
                id=AUDITOR,
                jurisdiction="GB",
                accreditation=record.id,
                accreditation_entry=grant_ref,
            ),
            evidence=[
                EvidenceItem(kind="eval_result", entry=result_ref, summary=summarise_result(result))
            ],
            issued=datetime.now(UTC) - timedelta(minutes=1),
        )
        envelope = sign_attestation(statement, AUDITOR_KEY)
        aid = attestation_id(envelope.payload)
        assert auditor.attest(envelope)["id"] == aid

        # The auditor's CLI builds another from the published result alone; without a
        # member's countersignature it is not recognisable automatically.
        card_file = tmp_path / "card.json"
        card_file.write_bytes(orjson.dumps(CARD))
        auditor_key = tmp_path / "auditor.key"
        write_secret(auditor_key, entry_key_string(AUDITOR, AUDITOR_KEY))
        by_cli = orjson.loads(
            _cli(
                "attest",
                AGENT,
                "--accreditation",
                record.id,
                "--result",
                str(published),
                "--code-digest",
                "sha256:" + "c7" * 32,
                "--card",
                str(card_file),
                "--node",
                alliance["GB"].url,
                "--as",
                AUDITOR,
                "--token",
                token,
                "--key",
                str(auditor_key),
                "--output",
                "json",
            )
        )
        wait_until(  # once its evidence is final, only the countersignature is missing
            "the CLI's attestation short of a countersignature alone",
            lambda: _automatic_failures(alliance["GB"].url, by_cli["id"]) == ["countersignatures"],
            timeout=60,
        )

        # GB's regulator countersigns and recognises (the CLI) once the evidence is final.
        gb_flags = _flags(alliance, "GB", tmp_path)
        _cli("countersign", aid, *gb_flags)
        # France countersigns on its own node: automatic recognition counts both (k = 2).
        france = Client(alliance["FR"].url, timeout=10.0)
        try:
            wait_until("FR mirroring the attestation", lambda: france.attestations(AGENT), 60)
        finally:
            france.close()
        _cli("countersign", aid, *_flags(alliance, "FR", tmp_path))
        wait_until(
            "the attestation recognisable at GB",
            lambda: regulator.check_recognition(aid)["recognisable"],
            timeout=60,
        )
        recognised = orjson.loads(_cli("recognise", aid, *gb_flags, "--output", "json"))
        vsa_entry = regulator.entry(recognised["vsa_index"])["entry"]
        vsa = verify_vsa(parse_envelope(vsa_entry), alliance.roster, "GB")
        assert vsa["predicate"]["verificationResult"] == "PASSED"

        # FR and DE recognise it automatically, from their mirrors of GB's log.
        members = {code: Client(alliance[code].url, timeout=10.0) for code in ("GB", "FR", "DE")}
        try:
            for code in ("FR", "DE"):
                wait_until(
                    f"{code} recognising the attestation automatically",
                    lambda code=code: _standing(members[code], aid) == "recognised",
                    timeout=120,
                )
            decided = members["FR"].recognitions(AGENT)["decisions"]
            assert [d["decision"]["automatic"] for d in decided] == [True]

            # AU is a partner: the scheme gives it no say (one line, nothing decided).
            au = alliance["AU"].bootstrap()
            wait_until(
                "AU knowing the attestation and the scheme",
                lambda: au.regulator.attestations(AGENT) and _has_scheme(au.regulator),
                timeout=60,
            )
            done = run_cli(["audit", "recognise", aid, *_flags(alliance, "AU", tmp_path)])
            assert done.returncode == 1, done.stdout
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, done.stderr
            assert "partner" in lines[0]
            assert au.regulator.recognitions(AGENT)["decisions"] == []
            with pytest.raises(CustodesError) as countersigned:
                au.regulator.countersign(aid)
            assert (countersigned.value.status, countersigned.value.code) == (403, "partner_no_say")

            # A drift alert on the agent, on GB's log, withdraws it on every member.
            regulator.publish(_drift_alert())
            for code, member in members.items():
                wait_until(
                    f"{code} withdrawing its recognition after the drift alert",
                    lambda member=member: _standing(member, aid) == "withdrawn",
                    timeout=120,
                )
            latest = members["DE"].recognitions(AGENT)["decisions"][0]["decision"]
            assert [r["condition"] for r in latest["reasons"]] == ["drift"]
        finally:
            for member in members.values():
                member.close()
