"""Run-specific calibration: the verdict-stratified audit sample, its weights, its labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from custodes.evals.calibration import (
    AuditLine,
    draw_audit,
    load_labels,
    plan_audit,
    run_quality,
    write_audit,
)
from custodes.evals.metrics import rogan_gladen, support
from custodes.evals.models import Outcome
from custodes.evals.results import SampleRecord
from custodes.evals.suite import EvalError, Suite, load_suite

FAMILIES = ("base64", "roleplay")


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("core")


def _record(n: int, family: str, judged: Outcome, kind: str = "must_refuse") -> SampleRecord:
    return SampleRecord(
        epoch=0,
        sample_id=f"b{n}:{family}:0",
        behaviour_id=f"b{n}",
        family_id=family,
        kind=kind,  # type: ignore[arg-type]
        attempt=0,
        text=f"answer {n}",
        outcome=judged,
        judge_id="custodes.rule",
        judge_version="1",
    )


def simulated_run(
    seed: int, size: int, asr: dict[str, float], se: float, sp: float
) -> tuple[list[SampleRecord], dict[str, bool]]:
    """Records judged by a judge with this Se/Sp, and each sample's true outcome."""
    rng = np.random.default_rng(seed)
    records, truth = [], {}
    for family, rate in asr.items():
        for n in range(size):
            true = bool(rng.random() < rate)
            positive = rng.random() < (se if true else 1 - sp)
            record = _record(n, family, Outcome.COMPLY if positive else Outcome.REFUSE)
            records.append(record)
            truth[record.sample_id] = true
    return records, truth


def test_the_sample_is_split_by_verdict_then_by_family_in_proportion() -> None:
    records = [_record(n, "base64", Outcome.COMPLY) for n in range(30)]
    records += [_record(n, "roleplay", Outcome.COMPLY) for n in range(10)]
    records += [_record(n, "base64", Outcome.REFUSE) for n in range(30, 330)]
    records += [_record(n, "roleplay", Outcome.REFUSE) for n in range(10, 110)]
    records += [_record(n, "direct", Outcome.REFUSE, kind="must_comply") for n in range(50)]
    records += [_record(n, "direct", Outcome.UNSAFE_ACTION, kind="agentic") for n in range(50)]
    plan = plan_audit(records, 80)
    assert plan.sample == {
        (True, "base64"): 30,
        (True, "roleplay"): 10,
        (False, "base64"): 30,
        (False, "roleplay"): 10,
    }
    assert plan.population[(False, "base64")] == 300
    # With fewer positives than half the sample, the rest goes to the other verdict.
    few = plan_audit(records[:5] + records[40:], 80)
    assert sum(n for (v, _), n in few.sample.items() if v) == 5
    assert sum(few.sample.values()) == 80


def test_the_drawn_lines_carry_what_a_person_needs(suite: Suite) -> None:
    behaviour = suite.behaviours[0].id
    family = next(f.id for f in suite.families_for(suite.behaviours[0]) if f.id != "direct")
    record = _record(0, family, Outcome.COMPLY).model_copy(
        update={"behaviour_id": behaviour, "sample_id": f"{behaviour}:{family}:0"}
    )
    lines = draw_audit([record], suite, attempts=1, size=2, seed=0)
    assert len(lines) == 1
    line = json.loads(lines[0].as_json())
    assert line["sample_id"] == record.sample_id
    assert (line["family"], line["judged"], line["label"]) == (family, "COMPLY", None)
    assert line["response"] == "answer 0"
    assert line["prompt"]
    assert line["prompt"][-1]["role"] == "user"


def test_a_run_calibration_recovers_the_true_asr_of_an_over_calling_judge(
    suite: Suite,
) -> None:
    """True ASR 20%; the judge (Se 0.9, Sp 0.6) reports about 50%; 80 labels correct it."""
    asr = {"base64": 0.2, "roleplay": 0.2}
    errors = []
    for seed in range(30):
        records, truth = simulated_run(seed, 600, asr, se=0.9, sp=0.6)
        lines = draw_audit(records, suite, attempts=1, size=80, seed=seed)
        labels = {line.sample_id: "COMPLY" if truth[line.sample_id] else "REFUSE" for line in lines}
        quality = run_quality(records, labels)
        se, sp = quality.point()
        judged = np.mean([r.outcome is Outcome.COMPLY for r in records])
        true_asr = np.mean(list(truth.values()))
        errors.append(rogan_gladen(float(judged), se, sp) - true_asr)
    # Measured: mean error +0.009, root mean square 0.049 (30 runs of 1,200 answers).
    assert abs(np.mean(errors)) < 0.02
    assert np.sqrt(np.mean(np.square(errors))) < 0.06


def test_the_weights_undo_the_stratified_draw(suite: Suite) -> None:
    """Few verdicts are successes, half the sample is: unweighted, Sp would look far worse."""
    weighted, naive = [], []
    for seed in range(30):
        records, truth = simulated_run(seed, 600, {"base64": 0.05}, se=0.8, sp=0.9)
        lines = draw_audit(records, suite, attempts=1, size=80, seed=seed)
        labels = {line.sample_id: "COMPLY" if truth[line.sample_id] else "REFUSE" for line in lines}
        quality = run_quality(records, labels)
        weighted.append(quality.point()[1])
        _, _, tn, negatives = quality.counts
        naive.append(tn / negatives)
    # Measured: weighted Sp 0.901, unweighted 0.583 (the judge's Sp is 0.9).
    assert abs(np.mean(weighted) - 0.9) < 0.03
    assert np.mean(naive) < 0.7


def test_the_run_posterior_is_checked_by_the_same_support_rule(suite: Suite) -> None:
    records, truth = simulated_run(1, 600, {"base64": 0.3}, se=0.95, sp=0.95)
    lines = draw_audit(records, suite, attempts=1, size=80, seed=1)
    labels = {line.sample_id: "COMPLY" if truth[line.sample_id] else "REFUSE" for line in lines}
    assert support(run_quality(records, labels)) is None
    few = dict(list(labels.items())[:20])  # 20 labelled: fewer than 30 in a stratum
    assert support(run_quality(records, few)) is not None


def _audit_file(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "epoch-0.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"sample_id": "b1:base64:0", "judged": "REFUSE", "label": "yes"}', "label must be"),
        ('{"sample_id": "b1:base64:0", "judged": "REFUSE"', "not a JSON object"),
        ('{"sample_id": "b9:base64:0", "judged": "REFUSE", "label": null}', "not a judged"),
        ('{"sample_id": "b0:base64:0", "judged": "REFUSE", "label": null}', "appears twice"),
        ('{"sample_id": "b1:base64:0", "judged": "COMPLY", "label": null}', "judged must stay"),
        ('{"judged": "COMPLY", "label": "COMPLY"}', "no sample_id"),
    ],
)
def test_a_bad_label_file_is_refused_with_its_line(tmp_path: Path, bad: str, message: str) -> None:
    records = [_record(0, "base64", Outcome.COMPLY), _record(1, "base64", Outcome.REFUSE)]
    path = _audit_file(
        tmp_path, [{"sample_id": "b0:base64:0", "judged": "COMPLY", "label": "refuse"}]
    )
    path.write_text(path.read_text() + bad + "\n")
    with pytest.raises(EvalError, match=message) as caught:
        load_labels(path, records)
    assert f"{path}, line 2: " in caught.value.message
    assert "\n" not in caught.value.message


def test_labels_are_read_case_blind_and_unlabelled_lines_skipped(tmp_path: Path) -> None:
    records = [_record(0, "base64", Outcome.COMPLY), _record(1, "base64", Outcome.REFUSE)]
    path = _audit_file(
        tmp_path,
        [
            {"sample_id": "b0:base64:0", "judged": "COMPLY", "label": "refuse"},
            {"sample_id": "b1:base64:0", "judged": "REFUSE", "label": None},
        ],
    )
    assert load_labels(path, records) == {"b0:base64:0": "REFUSE"}


def test_an_audit_file_is_not_drawn_over_without_force(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "epoch-0.jsonl"
    line = AuditLine("b0:base64:0", "base64", [], "text", "COMPLY")
    write_audit(path, [line])
    with pytest.raises(EvalError, match="already exists"):
        write_audit(path, [line])
    write_audit(path, [line, line], force=True)
    assert len(path.read_text().splitlines()) == 2
