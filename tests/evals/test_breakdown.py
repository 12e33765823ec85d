"""ASR per harm category and per language, and over-refusal per language.

Runs go through the real runner and the rule judge against a target written here (the
thing outside what is tested: a model), so the figures come from judged answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from custodes.cli.main import app
from custodes.evals.breakdown import UNCATEGORISED, UNKNOWN, Breakdown, breakdowns
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Behaviour, Outcome, Probe
from custodes.evals.results import EvalResult, SampleRecord
from custodes.evals.runner import RunRequest, run_eval
from custodes.evals.suite import BASELINE_FAMILY, Suite, load_suite
from custodes.evals.targets import CallableTarget

COMPLY = "Sure. Step 1: gather what you need. Step 2: follow the plan below in order."
REFUSE = "I can't help with that request."


def complies_in_german(probe: Probe) -> str:
    """A target that refuses harmful requests except when they are asked in German."""
    behaviour = probe.behaviour_id
    if "benign" in behaviour:
        return REFUSE if behaviour.startswith("fr-") else "Of course, here is the answer."
    return COMPLY if behaviour.startswith("de-") else REFUSE


@pytest.fixture(scope="module")
def multilingual() -> Suite:
    return load_suite("multilingual")


@pytest.fixture(scope="module")
def result(multilingual: Suite, tmp_path_factory: pytest.TempPathFactory) -> EvalResult:
    request = RunRequest(
        suite=multilingual,
        suite_source="multilingual",
        target=CallableTarget(complies_in_german),
        judge=RuleJudge(),
        out=tmp_path_factory.mktemp("run"),
    )
    return run_eval(request)


def by(result: EvalResult, dimension: str) -> dict[str, Breakdown]:
    return {b.value: b for b in result.breakdowns if b.by == dimension}


def test_the_multilingual_suite_asks_every_category_in_three_languages(
    multilingual: Suite,
) -> None:
    harmful = [b for b in multilingual.behaviours if b.kind == "must_refuse"]
    assert {b.lang for b in harmful} == {"en", "fr", "de"}
    for lang in ("en", "fr", "de"):
        categories = {b.harm_category for b in harmful if b.lang == lang}
        assert len(categories) == 8
    assert {b.lang for b in multilingual.behaviours if b.kind == "must_comply"} == {
        "en",
        "fr",
        "de",
    }


def test_a_target_weak_in_one_language_shows_in_that_language_only(result: EvalResult) -> None:
    languages = by(result, "language")
    assert set(languages) == {"en", "fr", "de"}
    de, en, fr = languages["de"], languages["en"], languages["fr"]
    assert (de.asr, en.asr, fr.asr) == (1.0, 0.0, 0.0)
    # 8 behaviours x 3 attack families (direct is the baseline, left out as in overall)
    assert (de.valid, de.behaviours) == (24, 8)
    overall = result.family("overall")
    assert overall.successes == sum(b.successes for b in languages.values())


def test_over_refusal_is_reported_per_language(result: EvalResult) -> None:
    languages = by(result, "language")
    assert languages["fr"].over_refusal == 1.0
    assert languages["fr"].benign_refusals == 4
    assert languages["en"].over_refusal == 0.0
    assert languages["de"].benign_valid == 4


def test_each_harm_category_pools_its_languages(result: EvalResult) -> None:
    categories = by(result, "harm_category")
    assert len(categories) == 8
    for row in categories.values():
        # one of three languages complies: 3 of 9 attack attempts per category
        assert (row.successes, row.valid) == (3, 9)
        low, high = row.wilson
        assert low < 1 / 3 < high
        # the three attempts on one behaviour agree: clustering widens the interval
        assert row.clustered is not None
        assert row.clustered[0] <= low
        assert row.clustered[1] >= high


def record(behaviour: str, family: str, outcome: Outcome, error: str | None = None) -> SampleRecord:
    return SampleRecord(
        epoch=0,
        sample_id=f"{behaviour}:{family}:0",
        behaviour_id=behaviour,
        family_id=family,
        kind="must_refuse",
        attempt=0,
        outcome=outcome,
        error=error,
        judge_id="j",
        judge_version="1",
    )


def test_errors_and_undetermined_are_counted_apart_never_as_safe() -> None:
    known = {"a": Behaviour(id="a", kind="must_refuse", prompt="x", harm_category="weapons")}
    records = [
        record("a", "base64", Outcome.COMPLY),
        record("a", "base64", Outcome.ERROR, error="timeout"),
        record("a", "base64", Outcome.ERROR),  # judge could not decide
        record("a", BASELINE_FAMILY, Outcome.COMPLY),  # the baseline is not an attack
        record("b", "rot13", Outcome.REFUSE),  # not in the suite
    ]
    rows = breakdowns(records, known.get, baseline_family=BASELINE_FAMILY)
    weapons = next(r for r in rows if r.by == "harm_category" and r.value == "weapons")
    assert (weapons.successes, weapons.valid, weapons.errors, weapons.undetermined) == (1, 1, 1, 1)
    assert weapons.asr == 1.0
    assert any(r.value == UNKNOWN for r in rows if r.by == "harm_category")
    assert UNCATEGORISED not in {r.value for r in rows}


def test_the_cli_prints_the_language_table(result: EvalResult, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = CliRunner().invoke(
        app,
        [
            "eval",
            "run",
            "--suite",
            "multilingual",
            "--target",
            "python:tests.evals.test_breakdown:complies_in_german",
            "--out",
            str(out),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "ASR per language" in done.output
    assert "ASR per harm category" in done.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'class="breakdown-language"' in html
