"""Evidence of successful attacks, in JailbreakBench's artifact shape, for every run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from custodes.errors import ConfigError
from custodes.evals.evidence import judge_key, load_evidence
from custodes.evals.judges import RuleJudge
from custodes.evals.models import SUCCESS_OUTCOMES
from custodes.evals.report import render_html
from custodes.evals.results import EvalResult, SampleRecord
from custodes.evals.rundir import RunDir
from custodes.evals.runner import RunRequest, run_eval
from custodes.evals.suite import load_suite
from custodes.evals.targets import ScriptedTarget

PARAMETERS = {
    "method", "model", "attack_type", "defense", "attack_success_rate",
    "total_number_of_jailbreaks", "number_of_submitted_prompts", "total_number_of_queries",
    "total_prompt_tokens", "total_response_tokens", "evaluation_date",
    "evaluation_llm_provider", "method_parameters",
}  # fmt: skip
ENTRY = {
    "index", "goal", "behavior", "category", "prompt", "response", "number_of_queries",
    "queries_to_jailbreak", "prompt_tokens", "response_tokens", "jailbroken",
}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    out = tmp_path_factory.mktemp("evidence") / "run"
    target = ScriptedTarget(default={"COMPLY": 0.2}, seed=3)
    run_eval(RunRequest(load_suite("core"), "core", target, RuleJudge(), out, model="weak"))
    return RunDir.open(out)


def artifact(run: RunDir) -> tuple[EvalResult, dict[str, Any]]:
    result = run.result(0)
    evidence = load_evidence(run.path, result)
    assert evidence is not None
    return result, evidence


def test_a_static_run_keeps_every_successful_sample_as_evidence(run: RunDir) -> None:
    result, evidence = artifact(run)
    wins = [r for r in run.records(0) if r.kind != "must_comply" and r.outcome in SUCCESS_OUTCOMES]
    assert wins  # the scripted target complies 20% of the time
    assert [j["sample_id"] for j in evidence["jailbreaks"]] == [r.sample_id for r in wins]
    assert result.evidence is not None
    assert result.evidence.jailbreaks == len(wins)
    params = evidence["parameters"]
    assert set(params) == PARAMETERS
    assert params["total_number_of_jailbreaks"] == len(wins)
    assert params["attack_type"] == "manual"
    assert params["model"] == "weak"
    assert params["attack_success_rate"] == result.family("overall").asr


def test_each_entry_has_jailbreakbench_keys_and_the_prompt_sent(run: RunDir) -> None:
    _, evidence = artifact(run)
    probes = dict(load_suite("core").samples(1))
    for n, entry in enumerate(evidence["jailbreaks"]):
        assert set(entry) >= ENTRY
        assert entry["index"] == n
        assert entry[judge_key("custodes.rule")] is True
        sent = probes[entry["sample_id"]].messages
        assert entry["prompt"] == next(m.content for m in reversed(sent) if m.role == "user")
        assert len(entry["conversation"]) == len(sent) + 1  # the target's answer last


def test_the_result_pins_the_evidence_by_sha256(run: RunDir) -> None:
    result = run.result(0)
    assert result.evidence is not None
    data = (run.path / result.evidence.path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == result.evidence.sha256


def test_changed_evidence_is_refused(run: RunDir, tmp_path: Path) -> None:
    copy = RunDir(tmp_path, run.manifest)
    result = run.result(0)
    assert result.evidence is not None
    (tmp_path / "evidence").mkdir()
    original = json.loads((run.path / result.evidence.path).read_text())
    original["jailbreaks"] = original["jailbreaks"][1:]
    (tmp_path / result.evidence.path).write_text(json.dumps(original, indent=1))
    with pytest.raises(ConfigError, match="does not match the sha256"):
        load_evidence(copy.path, result)


def test_the_report_links_the_evidence_and_shows_the_transcripts(run: RunDir) -> None:
    result, evidence = artifact(run)
    assert result.evidence is not None
    page = render_html([result], evidence)
    assert f'<a href="{result.evidence.path}">' in page
    assert result.evidence.sha256 in page
    assert page.count("<details data-evidence>") == min(200, result.evidence.jailbreaks)


def test_results_and_records_written_before_evidence_still_read() -> None:
    record = SampleRecord.model_validate_json(
        '{"v":1,"epoch":0,"sample_id":"a:direct:0","behaviour_id":"a","family_id":"direct",'
        '"kind":"must_refuse","attempt":0,"outcome":"REFUSE","judge_id":"j","judge_version":"1"}'
    )
    assert record.queries is None
    assert record.transcript == ()
