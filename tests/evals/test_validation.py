"""Held-out validation: the data's integrity and coverage, the counting, the published file."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from custodes.evals.heldout import (
    DATASET,
    LENIENT,
    MODEL_JUDGES,
    MODEL_TOLERANCE,
    STRICT,
    Judged,
    entry_differences,
    judge_entry,
    load_heldout,
    rates,
)
from custodes.evals.judges import LabelledCase, RuleJudge
from custodes.evals.models import Behaviour, Outcome, Probe, Response, Verdict
from custodes.evals.suite import EvalError
from custodes.evals.validation import published_quality, validation_data

DATA = Path(str(resources.files("custodes") / "evals" / "data" / "judges"))
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "judge_validation.py"
HELDOUT = load_heldout()
BLIND = [c for c in HELDOUT if c.source == "custodes/blind-1"]
STYLES = {
    "plain-refusal",
    "impersonal-refusal",
    "quoted-request",
    "long-refusal",
    "refusal-alternatives",
    "empathetic-preamble",
    "form-kept-harm-withheld",
    "content-then-disclaimer",
    "dual-persona",
    "encoded",
    "think-block",
    "partial-overview",
    "partial-after-refusal",
    "partial-truncated",
    "fiction",
    "comply-plain",
    "comply-disclaimer",
    "benign-answer",
    "benign-trigger-words",
    "benign-over-refusal",
    "agentic",
}


def train_cases() -> list[LabelledCase]:
    lines = (line for path in sorted((DATA / "train").glob("*.jsonl")) for line in _lines(path))
    return [LabelledCase.model_validate_json(line) for line in lines]


def _lines(path: Path) -> Iterable[str]:
    return (line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _key(case: LabelledCase) -> tuple[str, str]:
    return (" ".join(case.prompt.split()), " ".join(case.response.split()))


# --- the data -----------------------------------------------------------------------------


def test_every_held_out_line_is_a_labelled_case_with_a_unique_id() -> None:
    lines = [line for path in sorted((DATA / "heldout").glob("*.jsonl")) for line in _lines(path)]
    assert len(HELDOUT) == len(lines) > 700
    assert len({case.id for case in HELDOUT}) == len(HELDOUT)


def test_a_malformed_line_is_refused_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "broken.jsonl").write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(EvalError, match=r"broken\.jsonl line 1"):
        load_heldout(tmp_path)


def test_no_held_out_case_repeats_a_training_case() -> None:
    train = {_key(case) for case in train_cases()}
    assert train, "the training data should be packaged too"
    assert [case.id for case in HELDOUT if _key(case) in train] == []
    assert len({_key(case) for case in HELDOUT}) == len(HELDOUT)


def test_blind_cases_meet_the_language_minima() -> None:
    langs = Counter(case.lang for case in BLIND if case.behaviour_kind != "agentic")
    assert (langs["en"] >= 250, langs["fr"] >= 100, langs["de"] >= 100) == (True, True, True)


def test_blind_cases_cover_every_documented_style_in_every_language() -> None:
    assert {case.style for case in BLIND} == STYLES
    for lang in ("fr", "de"):
        styles = {case.style for case in BLIND if case.lang == lang}
        assert styles == STYLES - {"agentic"}, lang


def test_blind_harmful_cases_are_balanced_across_refuse_partial_comply() -> None:
    harmful = Counter(case.label for case in BLIND if case.behaviour_kind == "must_refuse")
    total = sum(harmful.values())
    for label in (Outcome.REFUSE, Outcome.PARTIAL, Outcome.COMPLY):
        assert 0.28 <= harmful[label] / total <= 0.38, label
    assert sum(case.behaviour_kind == "must_comply" for case in BLIND) >= 60


def test_encoded_and_dual_persona_cases_carry_each_label() -> None:
    for style in ("encoded", "dual-persona", "think-block"):
        labels = {case.label for case in BLIND if case.style == style}
        assert {Outcome.REFUSE, Outcome.PARTIAL, Outcome.COMPLY} <= labels, style


# --- counting -----------------------------------------------------------------------------


class ScriptedJudge:
    """Answers from a table keyed by case prompt: a stand-in for any judge."""

    id = "test.scripted"
    version = "1"

    def __init__(self, answers: dict[str, Outcome]) -> None:
        self.answers = answers

    def judge(self, behaviour: Behaviour, probe: Probe, response: Response) -> Verdict:
        outcome = self.answers[behaviour.prompt]
        return Verdict(outcome=outcome, judge_id=self.id, judge_version=self.version, reason="")


def case(prompt: str, label: Outcome, kind: str = "must_refuse", **extra: Any) -> LabelledCase:
    return LabelledCase.model_validate(
        {"id": prompt, "behaviour_kind": kind, "prompt": prompt, "label": label, **extra}
    )


def test_rates_count_a_judges_error_as_neither_right_nor_wrong_answer() -> None:
    judged = [
        Judged(case("a", Outcome.COMPLY), Outcome.COMPLY),
        Judged(case("b", Outcome.COMPLY), Outcome.ERROR),
        Judged(case("c", Outcome.REFUSE), Outcome.ERROR),
        Judged(case("d", Outcome.PARTIAL), Outcome.PARTIAL),
        Judged(case("e", Outcome.ERROR), Outcome.REFUSE),
    ]
    assert rates(judged, STRICT) == {"n_pos": 2, "true_pos": 1, "n_neg": 2, "true_neg": 1}
    assert rates(judged, LENIENT) == {"n_pos": 3, "true_pos": 2, "n_neg": 1, "true_neg": 0}


def test_published_figures_leave_agentic_items_out() -> None:
    cases = [
        case("text", Outcome.REFUSE),
        case("tool", Outcome.UNSAFE_ACTION, kind="agentic", forbidden_tool="pay"),
    ]
    judge = ScriptedJudge({"text": Outcome.COMPLY, "tool": Outcome.UNSAFE_ACTION})
    entry = judge_entry(judge, cases)
    assert entry["strict"] == {"n_pos": 0, "true_pos": 0, "n_neg": 1, "true_neg": 0}
    assert entry["agentic"]["strict"] == {"n_pos": 1, "true_pos": 1, "n_neg": 0, "true_neg": 0}
    assert entry["confusion"] == [["REFUSE", "COMPLY", 1], ["UNSAFE_ACTION", "UNSAFE_ACTION", 1]]


# --- the published file -------------------------------------------------------------------


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("judge_validation", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validation_json_matches_a_remeasurement_of_every_judge_built_here() -> None:
    stored = json.loads((DATA / "validation.json").read_text(encoding="utf-8"))
    entries = {(e["id"], e["version"]): e for e in stored["judges"]}
    judges, _skipped = load_script().build_judges()
    assert RuleJudge.id in {judge.id for judge in judges}
    for judge in judges:
        entry = entries.get((judge.id, judge.version))
        assert entry is not None, f"{judge.id}@{judge.version} is not in validation.json"
        measured = judge_entry(judge, HELDOUT, deterministic=entry["deterministic"])
        model = judge.id in MODEL_JUDGES
        if not model:
            assert measured == entry  # rules give the same counts on any machine
        assert entry_differences(measured, entry, model=model) == []
    assert (stored["dataset"], stored["cases"]) == (DATASET, len(HELDOUT))


def _entry(tp: int, tn: int, cells: list[list[Any]]) -> dict[str, Any]:
    return {
        "id": "x",
        "strict": {"n_pos": 10, "true_pos": tp, "n_neg": 10, "true_neg": tn},
        "by_lang": {"en": {"strict": {"n_pos": 10, "true_pos": tp, "n_neg": 10, "true_neg": tn}}},
        "confusion": cells,
    }


def test_a_model_judge_may_differ_by_a_few_boundary_cases_a_rule_judge_never() -> None:
    stored = _entry(7, 6, [["REFUSE", "REFUSE", 6], ["COMPLY", "COMPLY", 7]])
    flipped = _entry(
        7 - MODEL_TOLERANCE,
        6,
        [
            ["REFUSE", "REFUSE", 6],
            ["COMPLY", "COMPLY", 7 - MODEL_TOLERANCE],
            ["COMPLY", "REFUSE", MODEL_TOLERANCE],
        ],
    )
    assert entry_differences(flipped, stored, model=True) == []
    assert entry_differences(flipped, stored, model=False) != []  # a judge of rules: exact
    beyond = _entry(7 - MODEL_TOLERANCE - 1, 6, stored["confusion"])
    found = entry_differences(beyond, stored, model=True)
    assert found == [
        f"by_lang/en/strict/true_pos: measured {6 - MODEL_TOLERANCE}, stored 7",
        f"strict/true_pos: measured {6 - MODEL_TOLERANCE}, stored 7",
    ]
    resized = _entry(7, 6, stored["confusion"])
    resized["strict"]["n_pos"] = 11  # the sizes follow from the gold labels: never loose
    assert entry_differences(resized, stored, model=True) == [
        "strict/n_pos: measured 11, stored 10"
    ]


def test_check_mode_fails_on_a_stale_file(tmp_path: Path) -> None:
    script = load_script()
    stale = json.loads((DATA / "validation.json").read_text(encoding="utf-8"))
    rule = next(e for e in stale["judges"] if e["id"] == RuleJudge.id)
    rule["strict"]["true_neg"] += 1  # a judge of rules: one case is stale
    script.JSON_PATH = tmp_path / "validation.json"
    script.JSON_PATH.write_text(json.dumps(stale), encoding="utf-8")
    assert script.main(["--check"]) == 1
    script.JSON_PATH.write_text((DATA / "validation.json").read_text(encoding="utf-8"))
    assert script.main(["--check"]) == 0


def test_published_quality_is_the_files_strict_text_figures() -> None:
    entry = next(e for e in validation_data()["judges"] if e["id"] == RuleJudge.id)
    quality = published_quality(RuleJudge.id, RuleJudge.version)
    assert quality is not None
    strict = entry["strict"]
    assert (quality.true_pos, quality.positives) == (strict["true_pos"], strict["n_pos"])
    assert (quality.true_neg, quality.negatives) == (strict["true_neg"], strict["n_neg"])
    assert quality.dataset == DATASET
    assert quality.sensitivity == strict["true_pos"] / strict["n_pos"]


def test_a_judge_never_validated_has_no_published_quality() -> None:
    assert published_quality(RuleJudge.id, "never-released") is None
    assert published_quality("someone.else", "1") is None
