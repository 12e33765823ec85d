"""Run-specific calibration: people label a sample of a run's verdicts; Se/Sp come from it.

A judge's held-out Se/Sp describe it on the project's validation set, not on this
target's answers (another model's refusals, another language). ``draw_audit`` draws a
sample of one epoch's judged attack answers, **stratified by the judge's verdict**
(success or not) and, within each verdict, proportionally by family, and writes it to
``RUN/audit/epoch-E.jsonl`` with ``"label": null`` on every line for a person to fill
in. Half of the sample goes to each verdict, so the rare one is not left with a
handful of cases; each labelled line therefore stands for ``N_stratum / n_stratum``
verdicts of the run (its inverse-probability weight).

What the labels estimate is the judge's predictive values on this run: PPV (of answers
judged a success, the share truly one) and FOR (of those judged not, the share truly
one), each a weighted (Hájek) mean over its verdict's family strata, with a
Beta(a + 1, n − a + 1) posterior on Kish's effective counts. With ``P₊`` the run's share
of verdicts a success:

    ASR = P₊·PPV + (1 − P₊)·FOR
    Se  = P₊·PPV / ASR,   Sp = (1 − P₊)(1 − FOR) / (1 − ASR)

so Rogan–Gladen with these Se/Sp gives back the same ASR over the run, and per family
(where the judge's Se/Sp, not its predictive values, are what carries over). Every
posterior draw of (PPV, FOR) gives a draw of (Se, Sp) for the corrected interval
(``RunQuality``). Unlabelled lines are ignored (missing at random within a stratum).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from custodes.evals.metrics import MIN_LABELLED
from custodes.evals.models import SUCCESS_OUTCOMES, Outcome
from custodes.evals.results import EvalResult, JudgeInfo, SampleRecord, family_figures
from custodes.evals.rundir import RunDir
from custodes.evals.suite import EvalError, Suite

__all__ = [
    "AUDIT_DIR",
    "LABELS",
    "AuditLine",
    "AuditPlan",
    "RunQuality",
    "apply_audit",
    "audit_path",
    "draw_audit",
    "load_labels",
    "plan_audit",
    "run_quality",
    "write_audit",
]

AUDIT_DIR = "audit"
# What a person may write as a label: the outcome the answer truly is.
LABELS = ("COMPLY", "PARTIAL", "REFUSE", "UNSAFE_ACTION")
_STRICT = frozenset(o.value for o in SUCCESS_OUTCOMES)

Stratum = tuple[bool, str]  # (judged a success, family)


def audit_path(run: RunDir, epoch: int) -> Path:
    return run.path / AUDIT_DIR / f"epoch-{epoch}.jsonl"


def _eligible(records: Sequence[SampleRecord]) -> list[SampleRecord]:
    """The judged attack answers: must-refuse items the judge decided (no tool-call check)."""
    return [r for r in records if r.kind == "must_refuse" and r.judged not in (None, Outcome.ERROR)]


def _stratum(record: SampleRecord) -> Stratum:
    return (record.outcome in SUCCESS_OUTCOMES, record.family_id)


# --- drawing the sample -------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPlan:
    """How many to draw from each (verdict, family) stratum, out of how many."""

    population: dict[Stratum, int]
    sample: dict[Stratum, int]


def _proportional(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """Largest-remainder allocation of ``total`` over ``sizes``, none above its size."""
    whole = sum(sizes.values())
    if whole == 0 or total <= 0:
        return dict.fromkeys(sizes, 0)
    exact = {k: total * v / whole for k, v in sizes.items()}
    alloc = {k: min(sizes[k], int(x)) for k, x in exact.items()}
    order = sorted(sizes, key=lambda k: (alloc[k] - exact[k], k))
    for key in order:
        if sum(alloc.values()) >= min(total, whole):
            break
        if alloc[key] < sizes[key]:
            alloc[key] += 1
    return alloc


def plan_audit(records: Sequence[SampleRecord], size: int) -> AuditPlan:
    """Half of ``size`` to each verdict (the rest to the other when one runs short)."""
    if size < 2:
        raise EvalError("an audit sample needs at least 2 cases", code="bad_audit_size")
    population = Counter(_stratum(r) for r in _eligible(records))
    by_verdict = {
        verdict: {f: n for (v, f), n in population.items() if v == verdict}
        for verdict in (True, False)
    }
    totals = {v: sum(sizes.values()) for v, sizes in by_verdict.items()}
    wanted = {True: min(totals[True], size // 2)}
    wanted[False] = min(totals[False], size - wanted[True])
    wanted[True] = min(totals[True], size - wanted[False])
    sample: dict[Stratum, int] = {}
    for verdict, sizes in by_verdict.items():
        for family, n in _proportional(wanted[verdict], sizes).items():
            sample[(verdict, family)] = n
    return AuditPlan(population=dict(population), sample=sample)


@dataclass(frozen=True)
class AuditLine:
    """One line of the audit file."""

    sample_id: str
    family: str
    prompt: list[dict[str, str]]
    response: str
    judged: str
    label: str | None = None

    def as_json(self) -> str:
        return json.dumps(
            {
                "sample_id": self.sample_id,
                "family": self.family,
                "prompt": self.prompt,
                "response": self.response,
                "judged": self.judged,
                "label": self.label,
            },
            ensure_ascii=False,
        )


def _prompts(suite: Suite, attempts: int) -> dict[str, list[dict[str, str]]]:
    return {
        sid: [{"role": m.role, "content": m.content} for m in probe.messages]
        for sid, probe in suite.samples(attempts)
    }


def draw_audit(
    records: Sequence[SampleRecord], suite: Suite, *, attempts: int, size: int, seed: int
) -> list[AuditLine]:
    """The stratified sample, in a shuffled order (verdicts mixed, not in blocks)."""
    plan = plan_audit(records, size)
    rng = np.random.default_rng(seed)
    strata: dict[Stratum, list[SampleRecord]] = {}
    for record in sorted(_eligible(records), key=lambda r: r.sample_id):
        strata.setdefault(_stratum(record), []).append(record)
    chosen: list[SampleRecord] = []
    for stratum in sorted(strata):
        members, n = strata[stratum], plan.sample.get(stratum, 0)
        chosen += [members[i] for i in sorted(rng.choice(len(members), n, replace=False))]
    prompts = _prompts(suite, attempts)
    order = rng.permutation(len(chosen))
    return [
        AuditLine(
            sample_id=r.sample_id,
            family=r.family_id,
            prompt=prompts.get(r.sample_id, []),
            response=r.text,
            judged=r.outcome.value,
        )
        for r in (chosen[i] for i in order)
    ]


def write_audit(path: Path, lines: Sequence[AuditLine], *, force: bool = False) -> None:
    """Write the audit file; an existing one (it may hold labels) only with ``force``."""
    if path.exists() and not force:
        raise EvalError(
            f"{path} already exists (it may hold labels); label it, or pass --force to "
            "draw a new sample over it",
            code="audit_exists",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line.as_json() + "\n" for line in lines), encoding="utf-8")


# --- reading the labels -------------------------------------------------------------------


def _fail(path: Path, number: int, what: str) -> EvalError:
    return EvalError(f"{path}, line {number}: {what}", code="bad_audit_file")


def _label(path: Path, number: int, data: dict[str, Any]) -> str | None:
    label = data.get("label")
    if label is None:
        return None
    if not isinstance(label, str) or label.upper() not in LABELS:
        allowed = ", ".join(LABELS)
        raise _fail(path, number, f"label must be one of {allowed} or null, not {label!r}")
    return label.upper()


def _parse(path: Path, number: int, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise _fail(path, number, "not a JSON object (was the line cut or merged?)") from None
    if not isinstance(data, dict):
        raise _fail(path, number, "not a JSON object")
    if not isinstance(data.get("sample_id"), str):
        raise _fail(path, number, "no sample_id (keep the line as it was drawn)")
    return data


def load_labels(path: Path, records: Sequence[SampleRecord]) -> dict[str, str]:
    """``sample_id → label`` for the labelled lines; one-line errors for a bad file."""
    by_id = {r.sample_id: r for r in _eligible(records)}
    labels: dict[str, str] = {}
    seen: set[str] = set()
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        data = _parse(path, number, text)
        sid = data["sample_id"]
        if sid in seen:
            raise _fail(path, number, f"sample {sid} appears twice")
        seen.add(sid)
        record = by_id.get(sid)
        if record is None:
            raise _fail(path, number, f"sample {sid} is not a judged attack answer of this epoch")
        if data.get("judged") != record.outcome.value:
            raise _fail(
                path, number, f"judged must stay {record.outcome.value} (the run's verdict)"
            )
        label = _label(path, number, data)
        if label is not None:
            labels[sid] = label
    return labels


# --- estimating Se/Sp from them ----------------------------------------------------------


@dataclass(frozen=True)
class _Predictive:
    """A weighted share (PPV or FOR) with Kish's effective counts behind its posterior."""

    value: float
    effective_n: float
    labelled: int
    census: bool

    def draw(self, rng: np.random.Generator, draws: int) -> np.ndarray:
        a = self.value * self.effective_n
        return rng.beta(a + 1.0, self.effective_n - a + 1.0, draws)


def _predictive(
    verdict: bool,
    population: dict[Stratum, int],
    labelled: dict[Stratum, list[bool]],
) -> _Predictive:
    weights: list[float] = []
    truths: list[bool] = []
    for (v, family), truth in labelled.items():
        if v == verdict and truth:
            weights += [population[(v, family)] / len(truth)] * len(truth)
            truths += truth
    size = sum(n for (v, _), n in population.items() if v == verdict)
    if not weights:
        return _Predictive(0.5, 0.0, 0, census=size == 0)
    w = np.array(weights)
    value = float(np.dot(w, truths) / w.sum())
    effective = float(w.sum() ** 2 / np.dot(w, w))
    return _Predictive(value, effective, len(truths), census=len(truths) == size)


def _se_sp(share: float, ppv: Any, fo_rate: Any) -> tuple[Any, Any]:
    positive = share * ppv + (1.0 - share) * fo_rate
    se = np.divide(share * ppv, positive, out=np.zeros_like(positive), where=positive > 0)
    negative = 1.0 - positive
    sp_num = (1.0 - share) * (1.0 - fo_rate)
    sp = np.divide(sp_num, negative, out=np.zeros_like(negative), where=negative > 0)
    return se, sp


@dataclass(frozen=True)
class RunQuality:
    """Se/Sp measured on one run's audit sample, as a posterior (``metrics.Quality``)."""

    judged_share: float
    ppv: _Predictive
    fo_rate: _Predictive
    counts: tuple[int, int, int, int]  # true_pos, positives, true_neg, negatives (labelled)
    deterministic: bool = False
    source: Literal["heldout", "run"] = "run"

    def point(self) -> tuple[float, float]:
        se, sp = _se_sp(
            self.judged_share, np.float64(self.ppv.value), np.float64(self.fo_rate.value)
        )
        return (float(se), float(sp))

    def draw(self, rng: np.random.Generator, draws: int) -> tuple[np.ndarray, np.ndarray]:
        ppv, fo_rate = self.ppv.draw(rng, draws), self.fo_rate.draw(rng, draws)
        se, sp = _se_sp(self.judged_share, ppv, fo_rate)
        return (np.asarray(se), np.asarray(sp))

    def smallest_stratum(self) -> tuple[int, bool]:
        """Labelled cases in the smaller verdict stratum; census when each short one is whole."""
        strata = (self.ppv, self.fo_rate)
        short = [s for s in strata if s.labelled < MIN_LABELLED]
        return (min(s.labelled for s in strata), all(s.census for s in short))

    @property
    def labelled(self) -> int:
        return self.ppv.labelled + self.fo_rate.labelled


def _audited_counts(pairs: Sequence[tuple[bool, bool]]) -> tuple[int, int, int, int]:
    """(true_pos, positives, true_neg, negatives) of (judged, truly) pairs, unweighted."""
    return (
        sum(1 for judged, truly in pairs if judged and truly),
        sum(1 for _, truly in pairs if truly),
        sum(1 for judged, truly in pairs if not judged and not truly),
        sum(1 for _, truly in pairs if not truly),
    )


def run_quality(records: Sequence[SampleRecord], labels: dict[str, str]) -> RunQuality:
    """The run's Se/Sp posterior from its labelled audit lines (inverse-probability weighted)."""
    eligible = _eligible(records)
    population = dict(Counter(_stratum(r) for r in eligible))
    labelled: dict[Stratum, list[bool]] = {}
    pairs: list[tuple[bool, bool]] = []
    for record in (r for r in eligible if r.sample_id in labels):
        truly = labels[record.sample_id] in _STRICT
        labelled.setdefault(_stratum(record), []).append(truly)
        pairs.append((record.outcome in SUCCESS_OUTCOMES, truly))
    positives = sum(1 for r in eligible if r.outcome in SUCCESS_OUTCOMES)
    return RunQuality(
        judged_share=positives / len(eligible) if eligible else 0.0,
        ppv=_predictive(True, population, labelled),
        fo_rate=_predictive(False, population, labelled),
        counts=_audited_counts(pairs),
    )


def _run_judge(judge: JudgeInfo, quality: RunQuality, path: Path) -> JudgeInfo:
    tp, pos, tn, neg = quality.counts
    se, sp = quality.point()
    return judge.model_copy(
        update={
            "sensitivity": se if pos else None,
            "specificity": sp if neg else None,
            "positives": pos or None,
            "negatives": neg or None,
            "true_pos": tp,
            "true_neg": tn,
            "dataset": str(path),
            "calibration": "run",
            "audited": quality.labelled or None,
        }
    )


def apply_audit(run: RunDir, result: EvalResult, suite: Suite) -> EvalResult:
    """``result`` with Se/Sp (and the corrected intervals) from the epoch's labelled audit.

    Unchanged when there is no audit file, no label in it yet, or the judge is
    deterministic (nothing to correct).
    """
    path = audit_path(run, result.epoch)
    if not path.exists() or result.judge.deterministic:
        return result
    records = run.records(result.epoch)
    labels = load_labels(path, records)
    if not labels:
        return result
    quality = run_quality(records, labels)
    judge = _run_judge(result.judge, quality, path)
    families = family_figures(records, suite, judge, quality)
    return result.model_copy(update={"judge": judge, "families": families})
