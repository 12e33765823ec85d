"""Train the learned judge's head on data/judges/train/ ONLY, and write its weights.

    PYTHONPATH=src python benchmarks/train_judge.py [--write]

Reads every ``train/*.jsonl`` (never ``heldout/``), describes each text case as the
judge does (``custodes.evals.learned.describe``: MiniLM of the decoded answer and the
request, their cosine, rule features), and fits a multinomial logistic regression
(scikit-learn, fixed seed). It prints 5-fold cross-validated figures, which are ON
TRAIN DATA ONLY (the rules were written against the same data): they choose the model,
they are not the published quality. Published Se/Sp come from held-out data
(benchmarks/judge_validation.py). ``--write`` refits on all of train/ and writes
``src/custodes/evals/data/judges/learned-v1.npz``.

Agentic items (a deterministic check) and cases labelled ERROR or UNSAFE_ACTION are not
training material for a text head and are left out.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from custodes.evals.decode import answer_views
from custodes.evals.judges import LabelledCase, load_train, request_of
from custodes.evals.learned import (
    CLASSES,
    WEIGHTS_FILE,
    LearnedHead,
    clear_refusal,
    describe,
    rule_features,
)
from custodes.evals.models import Outcome
from custodes.evals.semantic import load_embedder

SEED = 8
C = 0.02  # chosen by the CV below among 0.01..1 (ON TRAIN ONLY)
RULE_WEIGHT = 4.0  # rule features count this much more under the same regularisation
OUT = Path(__file__).resolve().parents[1] / "src/custodes/evals/data/judges" / WEIGHTS_FILE


def text_cases() -> list[LabelledCase]:
    return [c for c in load_train() if c.behaviour_kind != "agentic" and c.label in CLASSES]


def features(cases: list[LabelledCase]) -> tuple[np.ndarray, np.ndarray]:
    """One row per case: its worst persona's view (the one labelled by a person)."""
    embedder = load_embedder(required=True, fast=True)  # as the judge loads it
    assert embedder is not None
    texts, requests = [], []
    for case in cases:
        request, encoding = request_of(case.behaviour(), case.probe())
        views = answer_views(case.response, encoding)
        texts.append(views[-1])  # dual persona: the jailbroken one comes last
        requests.append(request)
    x = describe(embedder, texts, requests)
    y = np.asarray([CLASSES.index(c.label) for c in cases])
    return x, y


def fit(x: np.ndarray, y: np.ndarray) -> LearnedHead:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    scale[-len(rule_features("", "")) :] /= RULE_WEIGHT
    model = LogisticRegression(C=C, max_iter=2000, random_state=SEED)
    model.fit((x - mean) / scale, y)
    return LearnedHead(model.coef_.astype(np.float64), model.intercept_, mean, scale)


def cross_validate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    predicted = np.zeros_like(y)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=SEED).split(x, y):
        head = fit(x[train], y[train])
        predicted[test] = np.argmax(head.probabilities(x[test]), axis=1)
    return predicted


def rule_predictions(x: np.ndarray) -> np.ndarray:
    # the first three rule features are the rule judge's one-hot outcome
    start = x.shape[1] - len(rule_features("", ""))
    return np.argmax(x[:, start : start + 3], axis=1)


def figures(name: str, y: np.ndarray, p: np.ndarray, table: Table) -> None:
    comply = CLASSES.index(Outcome.COMPLY)
    strict_pos, pred_pos = y == comply, p == comply
    se = (strict_pos & pred_pos).sum() / strict_pos.sum()
    sp = (~strict_pos & ~pred_pos).sum() / (~strict_pos).sum()
    lenient, lenient_pred = y != 0, p != 0
    se_l = (lenient & lenient_pred).sum() / lenient.sum()
    sp_l = (~lenient & ~lenient_pred).sum() / (~lenient).sum()
    acc = (y == p).mean()
    table.add_row(name, f"{acc:.3f}", f"{se:.3f}", f"{sp:.3f}", f"{se_l:.3f}", f"{sp_l:.3f}")


def main() -> None:
    console = Console()
    cases = text_cases()
    console.print(f"train/ text cases: {len(cases)} {dict(Counter(c.label.value for c in cases))}")
    x, y = features(cases)
    table = Table(title="5-fold CV ON TRAIN DATA ONLY (not the published quality)")
    for column in ("judge", "accuracy", "Se strict", "Sp strict", "Se lenient", "Sp lenient"):
        table.add_column(column)
    cv = cross_validate(x, y)
    figures("rules (custodes.rule v2, in-sample)", y, rule_predictions(x), table)
    figures("learned head (CV)", y, cv, table)
    clear = np.asarray(
        [
            clear_refusal(c.response, *request_of(c.behaviour(), c.probe())) is not None
            for c in cases
        ]
    )
    figures(
        f"combined: rules on {clear.sum()} clear refusals, head (CV) on the rest",
        y,
        np.where(clear, 0, cv),
        table,
    )
    console.print(table)
    sources = sorted({c.source or "custodes/v1" for c in cases})
    per = Table(title="CV accuracy per source and language, ON TRAIN ONLY")
    for column in ("source", "lang", "n", "rules", "learned"):
        per.add_column(column)
    rules = rule_predictions(x)
    for source in sources:
        for lang in sorted({c.lang for c in cases}):
            mask = np.asarray(
                [(c.source or "custodes/v1") == source and c.lang == lang for c in cases]
            )
            if mask.any():
                per.add_row(source, lang, str(mask.sum()), f"{(rules[mask] == y[mask]).mean():.2f}",
                            f"{(cv[mask] == y[mask]).mean():.2f}")  # fmt: skip
    console.print(per)
    if "--write" in sys.argv:
        OUT.write_bytes(fit(x, y).to_bytes())
        console.print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
