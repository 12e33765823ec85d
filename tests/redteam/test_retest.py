"""Re-tests: the redteam suite run against an agent decides verified or regressed, and a
result that cannot decide is refused with the reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes.audits.models import Requirement, SchemeBody, SuiteRequirement
from custodes.evals.judges import RuleJudge
from custodes.evals.results import EvalResult
from custodes.evals.runner import RunRequest, run_eval
from custodes.evals.suite import Suite, load_suite
from custodes.evals.targets import ScriptedTarget
from custodes.redteam.retest import (
    DEFAULT_MAX_ASR,
    DEFAULT_MIN_VALID,
    check_retest,
    max_asr_for,
)
from custodes.redteam.stix import stable_id
from custodes.redteam.suite import probe_key, redteam_suite
from tests.redteam.lifecycle import AGENT, AGENTIC_PROBE, DISCLOSURE, PROBE

OTHER = stable_id("vulnerability", "test", "another")
SUITE = redteam_suite([(DISCLOSURE, PROBE), (OTHER, AGENTIC_PROBE)])


def run(
    tmp_path: Path,
    target: ScriptedTarget,
    *,
    suite: Suite = SUITE,
    attempts: int = DEFAULT_MIN_VALID,
    agent_id: str | None = AGENT,
) -> EvalResult:
    request = RunRequest(
        suite, suite.id, target, RuleJudge(), tmp_path / "run", attempts=attempts, agent_id=agent_id
    )
    return run_eval(request)


def test_a_target_that_refuses_the_probe_is_verified(tmp_path: Path) -> None:
    result = run(tmp_path, ScriptedTarget({probe_key(OTHER): {"UNSAFE_ACTION": 1.0}}))
    assert check_retest(result, disclosure=DISCLOSURE, agent_id=AGENT, max_asr=0.0) == (
        "verified",
        [],
    )


def test_a_target_that_complies_has_regressed(tmp_path: Path) -> None:
    result = run(tmp_path, ScriptedTarget({probe_key(DISCLOSURE): {"COMPLY": 1.0}}))
    assert check_retest(result, disclosure=DISCLOSURE, agent_id=AGENT, max_asr=0.0) == (
        "regressed",
        [],
    )


def test_one_success_in_five_passes_only_a_threshold_that_allows_it(tmp_path: Path) -> None:
    rates = {"COMPLY": 0.5, "REFUSE": 0.5}
    seed = next(s for s in range(100) if _successes(tmp_path / str(s), rates, s) == 1)
    result = run(tmp_path / "final", ScriptedTarget({probe_key(DISCLOSURE): rates}, seed=seed))
    decide = check_retest
    assert decide(result, disclosure=DISCLOSURE, agent_id=AGENT, max_asr=0.0)[0] == "regressed"
    assert decide(result, disclosure=DISCLOSURE, agent_id=AGENT, max_asr=0.2)[0] == "verified"


def _successes(out: Path, rates: dict[str, float], seed: int) -> int:
    result = run(out, ScriptedTarget({probe_key(DISCLOSURE): rates}, seed=seed))
    row = next(b for b in result.breakdowns if b.value == probe_key(DISCLOSURE))
    return row.successes


def conditions(result: EvalResult, **kwargs: object) -> set[str]:
    args: dict[str, object] = {"disclosure": DISCLOSURE, "agent_id": AGENT, "max_asr": 0.0}
    status, failures = check_retest(result, **{**args, **kwargs})  # type: ignore[arg-type]
    assert status is None
    assert all(f.reason for f in failures)
    return {f.condition for f in failures}


def test_a_result_of_another_suite_is_refused(tmp_path: Path) -> None:
    core = load_suite("core")
    result = run(tmp_path, ScriptedTarget(), suite=core, attempts=1)
    assert conditions(result) == {
        "suite",
        "probe",
    }


def test_a_result_for_another_agent_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, ScriptedTarget(), agent_id="urn:custodes:gb:agent:someone-else")
    assert conditions(result) == {"subject"}
    anonymous = run(tmp_path / "anon", ScriptedTarget(), agent_id=None)
    assert conditions(anonymous) == {"subject"}


def test_a_result_that_does_not_cite_the_probe_is_refused(tmp_path: Path) -> None:
    without = redteam_suite([(OTHER, AGENTIC_PROBE)])
    result = run(tmp_path, ScriptedTarget(), suite=without)
    assert conditions(result) == {"probe"}


def test_too_few_valid_attempts_are_refused(tmp_path: Path) -> None:
    result = run(tmp_path, ScriptedTarget(), attempts=2)
    assert conditions(result) == {"samples"}
    errors = run(tmp_path / "errors", ScriptedTarget({probe_key(DISCLOSURE): {"ERROR": 1.0}}))
    assert conditions(errors) == {"samples"}
    assert check_retest(result, disclosure=DISCLOSURE, agent_id=AGENT, max_asr=0, min_valid=2)[0]


def scheme(**extra: object) -> SchemeBody:
    return SchemeBody.model_validate(
        {
            "_type": "custodes-common-scheme",
            "id": "alliance",
            "version": 1,
            "issued": datetime(2026, 1, 1, tzinfo=UTC),
            "expires": datetime(2027, 1, 1, tzinfo=UTC),
            "requirements": [
                Requirement(
                    sector="finance",
                    suites=(SuiteRequirement(id="core", version="1.0.0", max_overall_upper=0.2),),
                    validity_days=365,
                ).model_dump()
            ],
            **extra,
        }
    )


def test_the_threshold_comes_from_the_scheme_or_the_default() -> None:
    assert DEFAULT_MAX_ASR == 0.0
    assert max_asr_for(None) == DEFAULT_MAX_ASR
    assert max_asr_for(scheme()) == DEFAULT_MAX_ASR
    assert max_asr_for(scheme(redteam_max_asr=0.1)) == pytest.approx(0.1)
    assert "redteam_max_asr" not in scheme().model_dump(exclude_defaults=True)
