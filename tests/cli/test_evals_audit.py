"""``custodes eval audit-sample`` then ``eval report``: Se/Sp measured on the run itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custodes.cli.main import app
from custodes.evals.judges import RuleJudge
from custodes.evals.rundir import RunDir
from custodes.evals.runner import RunRequest, run_eval
from custodes.evals.suite import EvalError, load_suite
from custodes.evals.targets import ScriptedTarget


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    target = ScriptedTarget(default={"COMPLY": 0.4}, seed=3)
    run_eval(RunRequest(load_suite("core"), "core", target, RuleJudge(), out, attempts=1))
    return out


def _invoke(*args: str) -> str:
    done = CliRunner().invoke(app, ["eval", *args])
    assert done.exit_code == 0, done.output
    return done.output


def _label_all(path: Path, flip_every: int) -> list[dict[str, object]]:
    """Label each line with its verdict, except every ``flip_every``-th: the judge erred."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for n, row in enumerate(rows):
        success = row["judged"] in ("COMPLY", "UNSAFE_ACTION")
        if n % flip_every == 0:
            success = not success
        row["label"] = "COMPLY" if success else "REFUSE"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def test_audit_then_report_uses_the_runs_own_se_and_sp(run_dir: Path) -> None:
    before = RunDir.open(run_dir).result(0)
    assert before.judge.calibration != "run"
    drawn = json.loads(_invoke("audit-sample", str(run_dir), "--size", "60", "--output", "json"))
    path = run_dir / "audit" / "epoch-0.jsonl"
    assert sum(row["drawn"] for row in drawn) == 60
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 60
    assert all(row["label"] is None for row in rows)
    judged = [row["judged"] == "COMPLY" for row in rows]
    assert sum(judged) == 30  # half the sample from each verdict

    _label_all(path, flip_every=10)
    target = ScriptedTarget(default={"COMPLY": 0.4}, seed=3)
    resumed = run_eval(RunRequest(load_suite("core"), "core", target, RuleJudge(), run_dir))
    assert resumed.judge.calibration == "run"  # resuming the run summarises with the labels
    report = json.loads(_invoke("report", str(run_dir), "--output", "json"))
    judge = report["result"]["judge"]
    assert judge["calibration"] == "run"
    assert judge["audited"] == 60
    assert judge["positives"] + judge["negatives"] == 60
    assert judge["dataset"] == str(path)
    assert 0 < judge["sensitivity"] < 1
    assert 0 < judge["specificity"] < 1
    overall = report["result"]["families"][-1]
    assert overall["interval_method"] == "wilson-design-effect:behaviour"
    # What the report printed is what the run directory now holds.
    assert RunDir.open(run_dir).result(0).judge.calibration == "run"
    table = _invoke("report", str(run_dir))
    assert "labelled audit sample of this run" in table


def test_a_bad_label_is_refused_with_its_line(run_dir: Path) -> None:
    _invoke("audit-sample", str(run_dir), "--size", "10", "--seed", "4")
    path = run_dir / "audit" / "epoch-0.jsonl"
    rows = _label_all(path, flip_every=3)
    rows[2]["label"] = "mostly harmless"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    done = CliRunner().invoke(app, ["eval", "report", str(run_dir)])
    assert done.exit_code != 0
    assert isinstance(done.exception, EvalError)
    assert f"{path}, line 3: label must be one of" in done.exception.message


def test_a_second_draw_does_not_overwrite_labels(run_dir: Path) -> None:
    _invoke("audit-sample", str(run_dir), "--size", "10")
    done = CliRunner().invoke(app, ["eval", "audit-sample", str(run_dir), "--size", "10"])
    assert isinstance(done.exception, EvalError)
    assert "--force" in done.exception.message
    _invoke("audit-sample", str(run_dir), "--size", "12", "--force")
    lines = (run_dir / "audit" / "epoch-0.jsonl").read_text().splitlines()
    assert len(lines) == 12
