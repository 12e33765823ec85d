"""The audit watch on one GB node, step by step (its own rounds, not the background's):
automatic recognition needs the scheme's k member countersignatures and logs nothing
until then; a suspended accreditation or a changed model withdraws what rests on it;
every step done twice does nothing the second time (the tables are the state)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from custodes.audits.attestation import countersign
from custodes.audits.models import ACCREDITATION_TYPE, AuditorRef, attestation_id
from custodes.audits.vsa import verify_vsa
from custodes.config import Settings
from custodes.federation.audit_watch import AuditWatch
from custodes.ledger.dsse import Envelope, parse_envelope
from custodes.registry.models import ModelRecord, ModelUpdate
from custodes.store.db import read_tx
from tests.audits.node_world import (
    AUDITOR,
    MODEL_DIGEST,
    NodeWorld,
    accreditation,
    entry_ref,
    node_world,
    now,
    signed,
)
from tests.enrol import OPERATOR_KEY, REGULATOR_KEY, principal, submit


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[NodeWorld]:
    quiet = settings.model_copy(update={"audit_watch_interval": 3600.0})  # rounds: ours
    with node_world(quiet, tmp_path) as made:
        yield made


@pytest.fixture
def watch(world: NodeWorld) -> AuditWatch:
    cases = world.http.app.state.audit_cases  # type: ignore[attr-defined]
    return AuditWatch(
        world.node.audits, cases, leading=lambda: True, interval=3600, auto_recognise=True
    )


def _attest(world: NodeWorld, **changes: Any) -> tuple[Envelope, str]:
    envelope = world.attest(**changes)
    answer = world.post("/attestations", AUDITOR, envelope)
    assert answer.status_code == 201, answer.text
    return envelope, attestation_id(envelope.payload)


def _countersign(world: NodeWorld, envelope: Envelope, aid: str) -> None:
    signature = countersign(envelope, REGULATOR_KEY).signatures[-1]
    body = {"keyid": signature.keyid, "sig": base64.b64encode(signature.sig).decode()}
    answer = world.post(f"/attestations/{aid}/countersign", "regulator:gb", body)
    assert answer.status_code == 201, answer.text


def _standing(world: NodeWorld, aid: str) -> dict[str, Any]:
    decisions = world.node.audits.decisions_here(world.agent_id)
    return next(d for d in decisions if d["attestation"] == aid)


def test_automatic_recognition_waits_for_k_countersignatures(
    world: NodeWorld, watch: AuditWatch
) -> None:
    envelope, aid = _attest(world)
    before = world.logged()
    assert watch.recognise() == []
    assert world.logged() == before
    pending = world.node.audits.pending[aid]
    assert [f.condition for f in pending] == ["countersignatures"]
    listed = world.http.get("/api/v1/audits/recognitions").json()["pending"]
    assert [f["condition"] for f in listed[aid]] == ["countersignatures"]

    _countersign(world, envelope, aid)
    assert watch.recognise() == [aid]
    decision = _standing(world, aid)
    assert decision["status"] == "recognised"
    assert decision["decision"]["automatic"] is True
    assert decision["decision"]["actor"] == f"node:{world.node.settings.origin}"
    assert aid not in world.node.audits.pending

    logged = world.logged()
    assert watch.recognise() == []  # decided: never twice
    assert watch.propagate_withdrawals() == []  # its grounds stand
    assert world.logged() == logged


def test_the_automatic_recognition_issues_a_vsa_the_roster_verifies(
    world: NodeWorld, watch: AuditWatch
) -> None:
    envelope, aid = _attest(world)
    _countersign(world, envelope, aid)
    assert watch.recognise() == [aid]
    vsa_index = world.logged() - 1
    with read_tx(world.node.engine) as conn:
        data = world.node.store.entry_data(conn, vsa_index, vsa_index + 1)[0]
    roster = world.node.federation.roster
    assert roster is not None
    vsa = verify_vsa(parse_envelope(orjson.loads(data)), roster, "GB")
    assert vsa["predicate"]["verificationResult"] == "PASSED"


def test_a_suspended_accreditation_withdraws_what_rests_on_it(
    world: NodeWorld, watch: AuditWatch
) -> None:
    acc = "acc:gb:second"
    granted = world.post(
        "/accreditations",
        "regulator:gb",
        signed(accreditation(id=acc), ACCREDITATION_TYPE, REGULATOR_KEY),
    )
    assert granted.status_code == 201, granted.text
    auditor = world.statement()["predicate"]["auditor"]
    ref = AuditorRef.model_validate(
        {
            **auditor,
            "accreditation": acc,
            "accreditation_entry": entry_ref(world.node, granted.json()["index"]).model_dump(),
        }
    )
    envelope, aid = _attest(world, auditor=ref)
    _countersign(world, envelope, aid)
    assert watch.recognise() == [aid]

    suspend = accreditation(id=acc, op="suspend", reason="under review")
    answer = world.post(
        "/accreditations", "regulator:gb", signed(suspend, ACCREDITATION_TYPE, REGULATOR_KEY)
    )
    assert answer.status_code == 201, answer.text
    assert watch.propagate_withdrawals() == [aid]
    decision = _standing(world, aid)
    assert decision["status"] == "withdrawn"
    assert [r["condition"] for r in decision["decision"]["reasons"]] == ["accreditation"]
    logged = world.logged()
    assert watch.propagate_withdrawals() == []
    assert watch.recognise() == []  # a withdrawn recognition is a decision: not re-made
    assert world.logged() == logged


def test_a_new_model_withdraws_the_recognition_of_the_old_one(
    world: NodeWorld, watch: AuditWatch
) -> None:
    envelope, aid = _attest(world)
    _countersign(world, envelope, aid)
    assert watch.recognise() == [aid]
    operator = principal(world.node, "operator:acme", "operator", OPERATOR_KEY)
    model = ModelRecord(
        id="model:trader",
        provider="Acme",
        name="trader",
        version="2",
        digest="sha256:" + "5e" * 32,
        training_compute_flop=1e24,
    )
    assert model.digest != MODEL_DIGEST
    submit(
        world.node, operator, OPERATOR_KEY, ModelUpdate(actor=operator.id, at=now(), model=model)
    )
    assert watch.propagate_withdrawals() == [aid]
    reasons = _standing(world, aid)["decision"]["reasons"]
    assert [r["condition"] for r in reasons] == ["subject"]


def test_pending_failures_are_listed_for_their_agent_only(
    world: NodeWorld, watch: AuditWatch
) -> None:
    _, aid = _attest(world)
    assert watch.recognise() == []
    mine = world.http.get("/api/v1/audits/recognitions", params={"agent_id": world.agent_id})
    assert list(mine.json()["pending"]) == [aid]
    other = world.http.get(
        "/api/v1/audits/recognitions", params={"agent_id": "urn:custodes:gb:agent:other"}
    )
    assert other.json()["pending"] == {}


def test_a_node_trusting_other_accreditors_refuses_this_auditor(
    settings: Settings, tmp_path: Path
) -> None:
    only_fr = settings.model_copy(update={"trusted_accreditors": ["FR"]})
    with node_world(only_fr, tmp_path) as world:
        before = world.logged()
        answer = world.post("/attestations", AUDITOR, world.attest())
        assert answer.status_code == 422, answer.text
        failures = answer.json()["error"]["detail"]["failures"]
        assert "accreditation" in {f["condition"] for f in failures}
        assert world.logged() == before
