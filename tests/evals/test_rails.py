"""Rails: the error rate over every sample, the causes grouped by message, the override.

Results are built by ``summarise`` from hand-made records (no target, no node).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from custodes.errors import BadRequest
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome
from custodes.evals.rails import (
    MAX_ERROR_RATE,
    ErrorCause,
    check_publishable,
    error_causes,
    error_override,
    error_rate,
)
from custodes.evals.results import EvalResult, SampleRecord, judge_info, summarise
from custodes.evals.suite import Suite, load_suite

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("core")


def record(
    n: int,
    family: str = "base64",
    outcome: Outcome = Outcome.REFUSE,
    *,
    kind: str = "must_refuse",
    error: str | None = None,
    reason: str = "",
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
        reason=reason,
    )


def result_of(records: list[SampleRecord], suite: Suite) -> EvalResult:
    return summarise(
        records,
        suite,
        run_id="run-1",
        epoch=0,
        target="scripted",
        model=None,
        agent_id=None,
        judge=judge_info(RuleJudge()),
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
    ).model_copy(update={"issuer": "auditor:ukas"})


def failing(n: int, family: str = "base64", **kwargs: str) -> SampleRecord:
    return record(n, family, Outcome.ERROR, error="HTTP 503", **kwargs)  # type: ignore[arg-type]


def test_the_error_rate_counts_every_family_the_baseline_and_the_benign_controls(
    suite: Suite,
) -> None:
    records = [
        failing(1, "direct"),  # the no-attack baseline, left out of "overall"
        failing(2, "direct", kind="must_comply"),  # a benign control
        record(3, "base64", Outcome.ERROR),  # undetermined: the judge could not decide
        failing(4, "rot13"),
        *[record(n) for n in range(10, 26)],
    ]
    assert error_rate(result_of(records, suite)) == pytest.approx(4 / 20)


def test_a_result_without_samples_has_no_errors(suite: Suite) -> None:
    result = result_of([record(1)], suite).model_copy(update={"samples": 0})
    assert error_rate(result) == 0.0


def test_causes_are_grouped_by_message_most_frequent_first_with_an_example() -> None:
    records = [
        failing(1),
        record(2, outcome=Outcome.ERROR, error="no answer within 60 s"),
        failing(3),
        record(4, outcome=Outcome.ERROR, reason="empty answer"),
        record(5, outcome=Outcome.COMPLY),
        failing(6),
        record(7, outcome=Outcome.ERROR, error="no answer within 60 s"),
    ]
    assert error_causes(records) == [
        ErrorCause("HTTP 503", 3, "b1:base64:0"),
        ErrorCause("no answer within 60 s", 2, "b2:base64:0"),
        ErrorCause("undetermined: empty answer", 1, "b4:base64:0"),
    ]


def test_only_the_five_most_frequent_causes_are_given() -> None:
    records = [
        record(n * 10 + k, outcome=Outcome.ERROR, error=f"cause {n}")
        for n in range(7)
        for k in range(n + 1)
    ]
    causes = error_causes(records)
    assert [(c.message, c.count) for c in causes] == [
        (f"cause {n}", n + 1) for n in (6, 5, 4, 3, 2)
    ]


def test_no_errors_no_causes() -> None:
    assert error_causes([record(1), record(2, outcome=Outcome.COMPLY)]) == []


def over_threshold(suite: Suite) -> EvalResult:
    records = [failing(n) for n in range(2)] + [record(n) for n in range(10, 28)]
    result = result_of(records, suite)
    assert error_rate(result) == pytest.approx(0.1)
    return result


def test_a_result_above_the_threshold_is_refused_with_what_to_do(suite: Suite) -> None:
    with pytest.raises(BadRequest) as refused:
        check_publishable(over_threshold(suite))
    assert refused.value.code == "too_many_errors"
    assert refused.value.status == 422
    assert "error rate 10.0% is above the threshold 5.0%" in refused.value.message
    assert "--retry-errors" in refused.value.message
    assert "--allow-errors" in refused.value.message


def test_at_the_threshold_a_result_is_publishable(suite: Suite) -> None:
    records = [failing(1)] + [record(n) for n in range(10, 29)]
    result = result_of(records, suite)
    assert error_rate(result) == pytest.approx(MAX_ERROR_RATE)
    check_publishable(result)


def test_an_override_records_reason_rates_and_who_and_lets_it_through(suite: Suite) -> None:
    result = over_threshold(suite)
    override = error_override(
        result, "  the target's rate limit; reviewed by hand ", "auditor:ukas"
    )
    assert override.reason == "the target's rate limit; reviewed by hand"
    assert (override.error_rate, override.threshold) == (pytest.approx(0.1), MAX_ERROR_RATE)
    assert override.by == "auditor:ukas"
    check_publishable(result.model_copy(update={"error_override": override}))


def test_an_override_needs_a_reason(suite: Suite) -> None:
    with pytest.raises(BadRequest, match="reason"):
        error_override(over_threshold(suite), "   ", "auditor:ukas")


@pytest.mark.parametrize(
    "change", [{"by": "auditor:someone-else"}, {"error_rate": 0.01}], ids=["who", "rate"]
)
def test_an_override_that_does_not_match_the_result_is_refused(
    suite: Suite, change: dict[str, object]
) -> None:
    result = over_threshold(suite)
    override = error_override(result, "reviewed", "auditor:ukas").model_copy(update=change)
    with pytest.raises(BadRequest) as refused:
        check_publishable(result.model_copy(update={"error_override": override}))
    assert refused.value.code == "bad_override"


def test_a_harm_only_judge_abstaining_on_benign_controls_does_not_trip_the_rail(
    suite: Suite,
) -> None:
    """HarmBench's classifier and Llama Guard cannot grade a benign answer: undetermined."""
    abstained = [
        record(n, "direct", Outcome.ERROR, kind="must_comply", reason="undetermined: grades harm")
        for n in range(10)
    ]
    attacks = [record(n) for n in range(10, 20)]
    result = result_of(abstained + attacks, suite)
    assert result.over_refusal.undetermined == 10  # still reported with over-refusal
    assert error_rate(result) == 0.0
    broken = [failing(n, "direct", kind="must_comply") for n in range(20, 25)]
    assert error_rate(result_of(abstained + attacks + broken, suite)) == 5 / 25
