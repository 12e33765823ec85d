"""``custodes eval attack`` as a person runs it: a real process, a scripted attacker on loopback.

The attacker answers in PAIR's JSON; the scripted target yields only to the refined
prompt. The run directory gets its result (with best-of-k), its evidence and a report
linking it; an attacker that cannot be reached gives ERRORs whose cause is printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custodes.evals.models import SUCCESS_OUTCOMES
from custodes.evals.results import EvalResult
from custodes.evals.suite import load_suite
from tests.evals.attacker import COMPLIANCE, ESCALATION, scripted_attacker, winning
from tests.integration.procs import free_port, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def target_file(tmp_path: Path, yielding: int) -> Path:
    chosen = [b for b in load_suite("core").behaviours if b.kind == "must_refuse"][:yielding]
    path = tmp_path / "target.json"
    path.write_text(json.dumps({"script": {winning(b.prompt): COMPLIANCE for b in chosen}}))
    return path


def attack_args(attacker: str, target: Path, out: Path) -> list[str]:
    return [
        "eval", "attack", "--method", "pair", "--suite", "core",
        "--target", f"scripted:{target}", "--attacker", attacker, "--attacker-model", "red",
        "--budget", "5", "--width", "1", "--limit", "3", "--out", str(out),
    ]  # fmt: skip


def test_an_attack_run_reports_best_of_k_and_keeps_evidence(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with scripted_attacker("pair") as (url, _):
        done = run_cli(attack_args(url, target_file(tmp_path, 2), out))
    assert done.returncode == 0, done.stderr
    assert "best-of-k within a budget of 5 queries" in done.stdout
    result = EvalResult.model_validate_json((out / "result-0.json").read_bytes())
    pair = result.family("pair")
    assert (pair.successes, pair.valid) == (2, 3)
    assert result.evidence is not None
    assert f"evidence: {out / result.evidence.path}" in done.stdout
    evidence = json.loads((out / result.evidence.path).read_text())
    assert evidence["parameters"]["method"] == "pair"
    assert len(evidence["jailbreaks"]) == 2
    report = (out / "report.html").read_text()
    assert f'href="{result.evidence.path}"' in report
    assert "best-of-k" in report


def test_an_unreachable_attacker_is_an_error_with_its_cause_printed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    down = f"http://127.0.0.1:{free_port()}"
    done = run_cli(attack_args(down, target_file(tmp_path, 3), out))
    assert done.returncode == 0, done.stderr
    assert "attacker model failed" in done.stderr
    assert "cannot reach the attacker" in done.stderr
    result = EvalResult.model_validate_json((out / "result-0.json").read_bytes())
    pair = result.family("pair")
    assert (pair.errors, pair.valid, pair.successes) == (3, 0, 0)
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    attacked = [r for r in records if r["family_id"] == "pair"]
    assert all(r["outcome"] not in {o.value for o in SUCCESS_OUTCOMES} for r in attacked)
    assert all(r["outcome"] == "ERROR" for r in attacked)


def test_an_unknown_method_is_one_line(tmp_path: Path) -> None:
    args = attack_args("http://127.0.0.1:9", target_file(tmp_path, 0), tmp_path / "run")
    args[args.index("pair")] = "gcg"
    done = run_cli(args)
    assert done.returncode != 0
    assert "use one of pair, tap, crescendo" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("method", ["tap", "crescendo"])
def test_tap_and_crescendo_run_from_the_command_line(method: str, tmp_path: Path) -> None:
    chosen = [b for b in load_suite("core").behaviours if b.kind == "must_refuse"][:3]
    prompt = winning if method == "tap" else (lambda goal: ESCALATION.format(goal=goal))
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"script": {prompt(b.prompt): COMPLIANCE for b in chosen}}))
    out = tmp_path / "run"
    with scripted_attacker(method) as (url, _):
        args = attack_args(url, target, out)
        args[args.index("pair")] = method
        done = run_cli(args)
    assert done.returncode == 0, done.stderr
    result = EvalResult.model_validate_json((out / "result-0.json").read_bytes())
    assert result.family(method).successes == 3
    assert result.adaptive[0].method == method
