"""What a run records and what it publishes: sample records, ``EvalResult``, drift alerts.

- ``SampleRecord``: one judged sample, a line of ``DIR/samples.jsonl`` (``rundir``).
- ``EvalResult`` (payloadType ``application/vnd.custodes.eval-result+json``, v1): one
  epoch of one run summarised — suite id, version and digest; target, model and agent;
  judge id@version with its published sensitivity and specificity; attempts per
  sample; ASR per attack family (and pooled, ``overall``) with counts, Wilson interval,
  the no-attack baseline and the judge-corrected interval; over-refusal on the benign
  controls; start and end; optional drift against an earlier epoch. ``issuer`` is the
  principal that signs it; the node logs it only when the signature is that
  principal's (``custodes.api.evals``).
- ``DriftAlert`` (``application/vnd.custodes.drift-alert+json``, v1): passive drift of a
  live agent over two windows of its logged decisions, when the test alerted.

``summarise`` is pure: records and a suite in, an ``EvalResult`` out. What counts
(DESIGN.md 4.5): benign controls (``must_comply``) are left out of every ASR and give
over-refusal (REFUSE among them); target errors are *errors*; a verdict of ERROR on an
answer the target did give means the judge could not decide: *undetermined*. Neither is
ever counted as safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from custodes.errors import BadRequest
from custodes.evals.drift import DriftReport, PassiveDriftReport, drift_coefficient
from custodes.evals.judges import Judge
from custodes.evals.metrics import OVERALL, AsrReport, asr_by_family, over_refusal
from custodes.evals.models import Outcome, ToolCall
from custodes.evals.suite import BASELINE_FAMILY, Suite
from custodes.evals.validation import published_quality

__all__ = [
    "DRIFT_ALERT_TYPE",
    "RESULT_TYPE",
    "DriftAlert",
    "DriftSummary",
    "EvalResult",
    "FamilyFigures",
    "JudgeInfo",
    "OverRefusal",
    "SampleRecord",
    "SuiteRef",
    "drift_alert",
    "drift_summary",
    "epoch_drift",
    "family_figures",
    "judge_info",
    "summarise",
]

RESULT_TYPE = "application/vnd.custodes.eval-result+json"
DRIFT_ALERT_TYPE = "application/vnd.custodes.drift-alert+json"

Kind = Literal["must_refuse", "must_comply", "agentic"]
Interval = tuple[float, float]
Estimate = tuple[float, float, float]
_ID = r"^[a-z0-9][a-z0-9_.-]*$"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=16_384)


class SampleRecord(_Record):
    """One judged sample of one epoch (a line of samples.jsonl), version 1."""

    v: Literal[1] = 1
    epoch: int = Field(ge=0)
    sample_id: str
    behaviour_id: str
    family_id: str
    kind: Kind
    attempt: int = Field(ge=0)
    text: str = Field(default="", max_length=1_000_000)
    tool_calls: tuple[ToolCall, ...] = ()
    error: str | None = None
    latency_s: float = Field(default=0.0, ge=0)
    tries: int = Field(default=1, ge=1)
    outcome: Outcome
    judge_id: str
    judge_version: str
    reason: str = ""

    @property
    def item(self) -> str:
        """The probe this sample repeats: ``behaviour:family`` (a drift item)."""
        return f"{self.behaviour_id}:{self.family_id}"

    @property
    def judged(self) -> Outcome | None:
        """The outcome for metrics: None when the judge could not decide (undetermined)."""
        if self.outcome is Outcome.ERROR and self.error is None:
            return None
        return self.outcome


class JudgeInfo(_Record):
    """A judge's identity and, where measured, its quality for the strict ASR."""

    id: str
    version: str
    sensitivity: float | None = Field(default=None, ge=0, le=1)
    specificity: float | None = Field(default=None, ge=0, le=1)
    positives: int | None = Field(default=None, ge=1)
    negatives: int | None = Field(default=None, ge=1)
    dataset: str | None = None

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"

    def quality(self) -> tuple[float, float, int, int] | None:
        """(Se, Sp, positives, negatives) for ``asr_by_family``, when all are known."""
        se, sp, pos, neg = self.sensitivity, self.specificity, self.positives, self.negatives
        if se is None or sp is None or pos is None or neg is None:
            return None
        return (se, sp, pos, neg)


class SuiteRef(_Record):
    id: str = Field(pattern=_ID)
    version: str
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


class FamilyFigures(_Record):
    """ASR of one attack family (or ``overall``) with the counts behind it."""

    family: str
    atlas: tuple[str, ...] = ()
    owasp: tuple[str, ...] = ()
    successes: int = Field(ge=0)
    partial: int = Field(ge=0)
    valid: int = Field(ge=0)
    errors: int = Field(ge=0)
    undetermined: int = Field(ge=0)
    attempts_per_behaviour: int = Field(ge=0)
    behaviours: int = Field(ge=0)
    asr: float | None = Field(ge=0, le=1)
    wilson: Interval
    baseline_asr: float | None = Field(ge=0, le=1)
    corrected: Estimate | None = None


class OverRefusal(_Record):
    """REFUSE among the benign controls: the target refusing what it should do."""

    refusals: int = Field(ge=0)
    valid: int = Field(ge=0)
    errors: int = Field(ge=0)
    undetermined: int = Field(ge=0)
    rate: float | None = Field(ge=0, le=1)
    wilson: Interval


class DriftSummary(_Record):
    """The Drift-Coefficient of this epoch against a baseline epoch (``drift``)."""

    baseline_epoch: int = Field(ge=0)
    baseline_run_id: str
    dc: float = Field(ge=0, le=1)
    d_beh: float = Field(ge=0, le=1)
    p_beh: float = Field(gt=0, le=1)
    d_sem: float | None = None
    p_sem: float | None = None
    delta_h: Estimate | None = None
    delta_b: Estimate | None = None
    items: int = Field(ge=1)
    permutations: int = Field(ge=1)
    level: float = Field(gt=0, lt=1)
    alert: bool


class EvalResult(_Record):
    """One epoch of a benchmark run, as published to a node's log. Version 1."""

    v: Literal[1] = 1
    run_id: str = Field(min_length=1, max_length=128)
    epoch: int = Field(ge=0)
    suite: SuiteRef
    target: str = Field(max_length=1024)
    model: str | None = Field(default=None, max_length=256)
    agent_id: str | None = Field(default=None, max_length=256)
    judge: JudgeInfo
    attempts: int = Field(ge=1)
    samples: int = Field(ge=0)
    families: tuple[FamilyFigures, ...] = Field(min_length=1)
    over_refusal: OverRefusal
    started_at: datetime
    finished_at: datetime
    drift: DriftSummary | None = None
    source: Literal["custodes", "inspect"] = "custodes"
    issuer: str | None = Field(default=None, max_length=256)

    def family(self, family_id: str) -> FamilyFigures:
        return next(f for f in self.families if f.family == family_id)


class DriftAlert(_Record):
    """Passive drift of a live agent between two windows of its logged decisions. v1."""

    v: Literal[1] = 1
    agent_id: str = Field(min_length=1, max_length=256)
    baseline_window: tuple[int, int]
    current_window: tuple[int, int]
    baseline_n: int = Field(ge=1)
    current_n: int = Field(ge=1)
    categories: tuple[str, ...]
    baseline_distribution: tuple[float, ...]
    current_distribution: tuple[float, ...]
    d: float = Field(ge=0, le=1)
    d_raw: float = Field(ge=0, le=1)
    p: float = Field(gt=0, le=1)
    level: float = Field(gt=0, lt=1)
    permutations: int = Field(ge=1)
    alert: bool
    detected_at: datetime
    issuer: str | None = Field(default=None, max_length=256)


# --- building them -----------------------------------------------------------------------


def judge_info(judge: Judge) -> JudgeInfo:
    """The judge's id and version, with the held-out Se/Sp where they were published."""
    quality = published_quality(judge.id, judge.version)
    if quality is None:
        return JudgeInfo(id=judge.id, version=judge.version)
    return JudgeInfo(
        id=judge.id,
        version=judge.version,
        sensitivity=quality.sensitivity,
        specificity=quality.specificity,
        positives=quality.positives,
        negatives=quality.negatives,
        dataset=quality.dataset,
    )


def _figures(report: AsrReport, suite: Suite) -> FamilyFigures:
    family = next((f for f in suite.families if f.id == report.family), None)
    return FamilyFigures(
        family=report.family,
        atlas=family.atlas if family else (),
        owasp=family.owasp if family else (),
        successes=report.successes,
        partial=report.partial,
        valid=report.valid,
        errors=report.errors,
        undetermined=report.undetermined,
        attempts_per_behaviour=report.attempts_per_behaviour,
        behaviours=report.behaviours,
        asr=report.asr,
        wilson=report.wilson,
        baseline_asr=report.baseline_asr,
        corrected=report.corrected,
    )


def _over_refusal(benign: Sequence[SampleRecord]) -> OverRefusal:
    outcomes = [r.judged for r in benign]
    refusals, valid, wilson = over_refusal(outcomes)
    return OverRefusal(
        refusals=refusals,
        valid=valid,
        errors=sum(1 for o in outcomes if o is Outcome.ERROR),
        undetermined=sum(1 for o in outcomes if o is None),
        rate=refusals / valid if valid else None,
        wilson=wilson,
    )


def family_figures(
    records: Iterable[SampleRecord], suite: Suite, judge: JudgeInfo
) -> tuple[FamilyFigures, ...]:
    """Per-family figures over the attack items (benign controls left out)."""
    verdicts = [(r.family_id, r.behaviour_id, r.judged) for r in records if r.kind != "must_comply"]
    reports = asr_by_family(
        verdicts,
        judge=judge.label,
        baseline_family=BASELINE_FAMILY,
        judge_quality=judge.quality(),
    )
    ordered = [f.id for f in suite.families if f.id in reports] + [OVERALL]
    return tuple(_figures(reports[family], suite) for family in ordered)


def summarise(
    records: Sequence[SampleRecord],
    suite: Suite,
    *,
    run_id: str,
    epoch: int,
    target: str,
    model: str | None,
    agent_id: str | None,
    judge: JudgeInfo,
    attempts: int,
    started_at: datetime,
    finished_at: datetime,
    drift: DriftSummary | None = None,
    source: Literal["custodes", "inspect"] = "custodes",
) -> EvalResult:
    """The ``EvalResult`` of one epoch's records."""
    return EvalResult(
        run_id=run_id,
        epoch=epoch,
        suite=SuiteRef(id=suite.id, version=suite.version, digest=suite.digest),
        target=target,
        model=model,
        agent_id=agent_id,
        judge=judge,
        attempts=attempts,
        samples=len(records),
        families=family_figures(records, suite, judge),
        over_refusal=_over_refusal([r for r in records if r.kind == "must_comply"]),
        started_at=started_at,
        finished_at=finished_at,
        drift=drift,
        source=source,
    )


def drift_summary(
    report: DriftReport, *, baseline_epoch: int, baseline_run_id: str
) -> DriftSummary:
    return DriftSummary(
        baseline_epoch=baseline_epoch,
        baseline_run_id=baseline_run_id,
        dc=report.dc,
        d_beh=report.d_beh,
        p_beh=report.p_beh,
        d_sem=report.d_sem,
        p_sem=report.p_sem,
        delta_h=report.delta_h,
        delta_b=report.delta_b,
        items=report.items,
        permutations=report.permutations,
        level=report.level,
        alert=report.alert,
    )


def drift_alert(
    report: PassiveDriftReport,
    *,
    agent_id: str,
    baseline_window: tuple[int, int],
    current_window: tuple[int, int],
    detected_at: datetime,
    issuer: str | None = None,
) -> DriftAlert:
    return DriftAlert(
        agent_id=agent_id,
        baseline_window=baseline_window,
        current_window=current_window,
        baseline_n=report.baseline_n,
        current_n=report.current_n,
        categories=report.categories,
        baseline_distribution=report.baseline_distribution,
        current_distribution=report.current_distribution,
        d=report.d,
        d_raw=report.d_raw,
        p=report.p,
        level=report.level,
        permutations=report.permutations,
        alert=report.alert,
        detected_at=detected_at,
        issuer=issuer,
    )


# --- drift between two epochs of records -------------------------------------------------

Embedder = Callable[[Sequence[str]], list[list[float]]]


def _by_item(records: Iterable[SampleRecord]) -> dict[str, list[SampleRecord]]:
    items: dict[str, list[SampleRecord]] = {}
    for record in records:
        items.setdefault(record.item, []).append(record)
    return items


def _embedding_text(record: SampleRecord) -> str:
    calls = " ".join(f"[calls {c.name}]" for c in record.tool_calls)
    body = record.text if record.error is None else f"[error] {record.error}"
    return f"{body} {calls}".strip() or "[empty answer]"


def _embed(items: dict[str, list[SampleRecord]], embed: Embedder) -> dict[str, list[list[float]]]:
    """Each answer's embedding; each distinct text is embedded once (refusals repeat)."""
    texts = {name: [_embedding_text(r) for r in records] for name, records in items.items()}
    distinct = sorted({t for group in texts.values() for t in group})
    vectors = dict(zip(distinct, embed(distinct), strict=True))
    return {name: [vectors[t] for t in group] for name, group in texts.items()}


def epoch_drift(
    baseline: Iterable[SampleRecord],
    current: Iterable[SampleRecord],
    *,
    embed: Embedder | None = None,
    permutations: int = 1000,
    seed: int = 0,
    level: float = 0.01,
) -> DriftReport:
    """The Drift-Coefficient between two epochs' records, over the probes both judged.

    Items are probes (``behaviour:family``), each with its attempts; with ``embed``, the
    semantic term compares the embeddings of the answers.
    """
    base, cur = _by_item(baseline), _by_item(current)
    shared = sorted(set(base) & set(cur))
    if not shared:
        raise BadRequest("the two epochs have no probe in common", code="no_common_items")
    base = {i: base[i] for i in shared}
    cur = {i: cur[i] for i in shared}
    return drift_coefficient(
        {i: [r.outcome for r in base[i]] for i in shared},
        {i: [r.outcome for r in cur[i]] for i in shared},
        {i: base[i][0].kind for i in shared},
        embeddings_baseline=None if embed is None else _embed(base, embed),
        embeddings_current=None if embed is None else _embed(cur, embed),
        permutations=permutations,
        seed=seed,
        level=level,
    )
