"""Judge quality IN-SAMPLE: the rule judge's sensitivity and specificity on train/ data.

Measures ``custodes.rule`` on the training data (``data/judges/train/*.jsonl``; the
rules were written against it, so these figures are in-sample and flatter the judge).
Published Se/Sp come from held-out data only: ``benchmarks/judge_validation.py`` and
``custodes.evals.validation``. This script is for rule authors; it prints:

- sensitivity (Se) and specificity (Sp), each with a Wilson 95% interval, under the
  lenient positive (COMPLY, UNSAFE_ACTION, PARTIAL) and the strict one (COMPLY,
  UNSAFE_ACTION);
- the same per behaviour kind (agentic items are a deterministic tool-call check, so
  the text-only rows are the ones that say how good the refusal rules are);
- the 5×5 confusion matrix (gold rows, judged columns);
- with ``--show-errors``, every case the judge gets wrong.

    .venv/bin/python benchmarks/judge_quality.py [--show-errors]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from custodes.evals.judges import (
    LENIENT_POSITIVE,
    STRICT_POSITIVE,
    JudgeQuality,
    LabelledCase,
    RuleJudge,
    load_train,
    measure_judge,
)
from custodes.evals.models import Outcome

Z95 = 1.959963984540054


def wilson(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return (centre - half, centre + half)


def rate(successes: int, n: int) -> str:
    if n == 0:
        return "n/a"
    low, high = wilson(successes, n)
    return f"{successes / n:.3f} [{low:.3f}, {high:.3f}]  ({successes}/{n})"


def summary_table(title: str, rows: Sequence[tuple[str, JudgeQuality]]) -> Table:
    table = Table(title=title)
    for column in ("subset", "Se [Wilson 95%]", "Sp [Wilson 95%]"):
        table.add_column(column)
    for name, q in rows:
        table.add_row(name, rate(q.true_pos, q.n_pos), rate(q.true_neg, q.n_neg))
    return table


def confusion_table(q: JudgeQuality) -> Table:
    outcomes = list(Outcome)
    counts = {(g, p): n for g, p, n in q.confusion}
    table = Table(title="Confusion matrix (rows: gold label, columns: rule judge)")
    table.add_column("gold \\ judged")
    for outcome in outcomes:
        table.add_column(str(outcome), justify="right")
    for gold in outcomes:
        table.add_row(str(gold), *(str(counts.get((gold, p), 0)) for p in outcomes))
    return table


def per_kind(cases: Sequence[LabelledCase]) -> list[tuple[str, JudgeQuality]]:
    rows = []
    for kind in ("must_refuse", "must_comply", "agentic"):
        subset = [c for c in cases if c.behaviour_kind == kind]
        rows.append((kind, measure_judge(RuleJudge(), subset)))
    text = [c for c in cases if c.behaviour_kind != "agentic"]
    rows.append(("text only (no agentic)", measure_judge(RuleJudge(), text)))
    return rows


def error_table(cases: Sequence[LabelledCase]) -> Table:
    table = Table(title="Cases the rule judge gets wrong")
    for column in ("id", "gold", "judged", "reason", "response (start)"):
        table.add_column(column, overflow="fold")
    judge = RuleJudge()
    for case in cases:
        verdict = judge.judge(case.behaviour(), case.probe(), case.as_response())
        if verdict.outcome != case.label:
            start = case.response[:70].replace("\n", " ")
            table.add_row(case.id, case.label, verdict.outcome, verdict.reason, start)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-errors", action="store_true", help="list misjudged cases")
    args = parser.parse_args()
    console = Console()
    cases = load_train()
    lenient = measure_judge(RuleJudge(), cases, positive=LENIENT_POSITIVE)
    strict = measure_judge(RuleJudge(), cases, positive=STRICT_POSITIVE)
    console.print(f"train/: {len(cases)} cases (IN-SAMPLE: not the published quality)")
    console.print(
        summary_table(
            f"custodes.rule v{RuleJudge.version} on train/ (in-sample)",
            [("all, lenient (COMPLY+PARTIAL+UNSAFE_ACTION)", lenient), ("all, strict", strict)],
        )
    )
    console.print(summary_table("By behaviour kind (lenient)", per_kind(cases)))
    console.print(confusion_table(lenient))
    if args.show_errors:
        console.print(error_table(cases))


if __name__ == "__main__":
    main()
