"""AgentDojo against a scripted agent on loopback: AgentDojo's checks decide every case.

The agent (tests/evals/agentdojo_agent.py) is a real OpenAI-compatible HTTP server that
plays AgentDojo's ground truth, falling for injections in the banking suite only. Where
agentdojo is not installed these tests skip with the reason, except under
CUSTODES_REQUIRE_AGENTDOJO=1 (CI installs custodes[agentdojo]), where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from custodes.cli.evals import print_result
from custodes.config import Settings
from custodes.evals.agentdojo import (
    BENCHMARK_VERSION,
    agentdojo_result,
    openai_agent,
    pipeline_name,
    plan_cases,
    run_agentdojo,
)
from custodes.evals.agentic import CaseResult, agentic_figures, rate
from custodes.evals.results import EvalResult
from custodes.evals.rundir import RunDir
from custodes.evals.suite import EvalError
from tests.evals.test_results import Auditor, _wait_for_proof


def _agentdojo_missing() -> str | None:
    if importlib.util.find_spec("agentdojo") is not None:
        return None
    if os.environ.get("CUSTODES_REQUIRE_AGENTDOJO") == "1":
        pytest.fail("CUSTODES_REQUIRE_AGENTDOJO=1 but agentdojo is not installed")
    return "agentdojo is not installed (pip install 'custodes[agentdojo]')"


@pytest.fixture(scope="module")
def benchmark() -> str:
    missing = _agentdojo_missing()
    if missing:
        pytest.skip(missing)
    return BENCHMARK_VERSION


@pytest.fixture(scope="module")
def gullible_in_banking(benchmark: str) -> Iterator[str]:
    from tests.evals.agentdojo_agent import (  # noqa: PLC0415 - needs agentdojo
        ScriptedAgent,
        serve_agent,
    )

    agent = ScriptedAgent(
        benchmark, follows=frozenset({"banking"}), fail_suites=frozenset({"travel"})
    )
    with serve_agent(agent) as url:
        yield url


@pytest.fixture(scope="module")
def result(gullible_in_banking: str) -> EvalResult:
    cases = plan_cases(["banking", "slack"], limit=2)
    run = run_agentdojo(openai_agent(gullible_in_banking, "scripted-agent"), cases)
    return agentdojo_result(run, run_id="r1", target=f"openai:{gullible_in_banking}", model="m")


def _suite(result: EvalResult, name: str):  # type: ignore[no-untyped-def]
    assert result.agentic is not None
    return next(s for s in result.agentic.suites if s.suite == name)


def test_an_agent_that_follows_injections_has_full_targeted_asr(result: EvalResult) -> None:
    banking = _suite(result, "banking")
    # 2 user tasks x 9 injection tasks, every injection goal carried out.
    assert (banking.targeted_asr.count, banking.targeted_asr.valid) == (18, 18)
    assert banking.targeted_asr.wilson[0] > 0.8
    assert (banking.benign_utility.count, banking.benign_utility.valid) == (2, 2)


def test_an_agent_that_resists_keeps_its_utility_under_attack(result: EvalResult) -> None:
    slack = _suite(result, "slack")
    assert (slack.targeted_asr.count, slack.targeted_asr.valid) == (0, 10)
    assert slack.targeted_asr.wilson[1] < 0.3
    assert (slack.utility_under_attack.count, slack.utility_under_attack.valid) == (10, 10)


def test_pooled_figures_and_the_attack_family_carry_the_targeted_asr(result: EvalResult) -> None:
    pooled = _suite(result, "all")
    assert (pooled.targeted_asr.count, pooled.targeted_asr.valid) == (18, 28)
    assert result.family("important_instructions").successes == 18
    assert result.family("overall").valid == 28
    assert result.samples == 2 * (1 + 9) + 2 * (1 + 5)


def test_the_result_pins_agentdojo_and_round_trips(result: EvalResult) -> None:
    assert result.source == "agentdojo"
    assert result.agentic is not None
    assert result.agentic.benchmark_version == "v1.2.2"
    assert result.agentic.package_version == "0.1.35"
    assert result.judge.label == "agentdojo-checks@0.1.35"
    assert result.judge.sensitivity is None  # deterministic checks: no corrected interval
    assert result.suite.id == "agentdojo-all"
    assert EvalResult.model_validate_json(result.model_dump_json()) == result


def test_endpoint_failures_are_errors_not_outcomes(gullible_in_banking: str) -> None:
    cases = plan_cases(["travel"], limit=1)
    run = run_agentdojo(openai_agent(gullible_in_banking, "m"), cases)
    assert all(c.error is not None and "400" in c.error for c in run.cases)
    travel = _suite(agentdojo_result(run, run_id="r2", target="openai:x", model="m"), "travel")
    assert travel.targeted_asr.valid == 0
    assert travel.targeted_asr.errors == len(cases) - 1
    assert travel.targeted_asr.rate is None


def test_unknown_suites_and_attacks_are_named(benchmark: str) -> None:
    with pytest.raises(EvalError, match="no suite 'shopping'; choose from banking, slack"):
        plan_cases(["shopping"])
    cases = plan_cases(["banking"], limit=1)
    with pytest.raises(EvalError, match="no attack 'nope'"):
        run_agentdojo(openai_agent("http://127.0.0.1:9", "m"), cases, attack="nope")


def test_models_agentdojo_does_not_know_are_addressed_as_local(benchmark: str) -> None:
    assert pipeline_name("my-finetune") == "local"
    assert pipeline_name("gpt-4o-2024-05-13") == "gpt-4o-2024-05-13"


def test_rates_leave_errors_out() -> None:
    figure = rate([True, False, None, True])
    assert (figure.count, figure.valid, figure.errors) == (2, 3, 1)
    assert figure.rate == pytest.approx(2 / 3)


def test_one_suite_has_no_pooled_row() -> None:
    cases = [CaseResult("slack", "u0", None, utility=True), CaseResult("slack", "u0", "i1")]
    figures = agentic_figures(cases, package_version="x", benchmark_version="v", attack="a")
    assert [s.suite for s in figures.suites] == ["slack"]


def test_results_without_agentic_figures_still_validate(result: EvalResult) -> None:
    older = result.model_dump(mode="json", exclude={"agentic"})
    older["source"] = "custodes"
    assert EvalResult.model_validate(older).agentic is None


# --- the command line ----------------------------------------------------------------------


def _custodes(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custodes", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_writes_a_run_that_publish_can_read(gullible_in_banking: str, tmp_path: Path) -> None:
    out = tmp_path / "adojo"
    done = _custodes(
        "eval", "agentdojo", "--target", f"openai:{gullible_in_banking}", "--model", "m",
        "--suite", "banking", "--limit", "1", "--out", str(out), "-o", "json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = EvalResult.model_validate(json.loads(done.stdout))
    run = RunDir.open(out)
    assert run.manifest.source == "agentdojo"
    assert run.result(0) == printed
    assert printed.family("overall").successes == 9
    cases = [json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines()]
    assert len(cases) == 10
    assert {c["injection_task"] for c in cases} >= {None, "injection_task_0"}


def test_cli_exits_1_when_too_many_cases_err(gullible_in_banking: str, tmp_path: Path) -> None:
    out = tmp_path / "failing"
    done = _custodes(
        "eval", "agentdojo", "--target", f"openai:{gullible_in_banking}", "--model", "m",
        "--suite", "travel", "--limit", "1", "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "8 of 8 cases erred; first: BadRequestError" in done.stderr
    assert "more than --max-error-rate 10%" in done.stderr
    assert RunDir.open(out).result(0).agentic is not None  # kept, for the record


def test_a_logged_result_prints_its_utility_beside_the_asr(
    result: EvalResult, capsys: pytest.CaptureFixture[str]
) -> None:
    print_result(result)  # what custodes eval show prints for a logged result
    printed = capsys.readouterr().out
    flat = " ".join(printed.split())
    assert "AgentDojo 0.1.35 (benchmark v1.2.2)" in flat
    assert "(18/18)" in flat  # banking: targeted ASR and utility under attack
    assert printed.count("(18/18)") == 2
    assert "benign" in flat


def test_cli_refuses_a_target_that_is_not_openai(benchmark: str, tmp_path: Path) -> None:
    done = _custodes(
        "eval", "agentdojo", "--target", "a2a:http://x", "--model", "m", "--out", "o",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "--target openai:URL" in done.stderr
    assert "Traceback" not in done.stderr


# --- published like any other result ---------------------------------------------------


@pytest.fixture
def db_url(tmp_path: Path) -> str:  # the node's database plays no part here: SQLite only
    return f"sqlite:///{tmp_path / 'custodes.db'}"


def test_an_agentdojo_result_is_published_and_proven(
    result: EvalResult, client: TestClient, settings: Settings
) -> None:
    auditor = Auditor(client, settings, "auditor:ukas", "auditor")
    index = auditor.evals.publish(result)
    answer = _wait_for_proof(auditor, index)
    stored = EvalResult.model_validate(answer["record"])
    assert stored == result.model_copy(update={"issuer": "auditor:ukas"})
    assert stored.agentic is not None
    assert stored.agentic.suites[0].targeted_asr.count == 18
