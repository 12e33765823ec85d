"""An adaptive attack run: every behaviour searched, the static baseline, and the figures.

``run_attack`` is the whole of ``custodes eval attack``: open or resume the run
directory, send the suite's plain request once per behaviour (the static ASR), search
each behaviour (``custodes.evals.adaptive``), close the epoch with its evidence, and
add the method's figures: success within the budget and best-of-k (ASR@k for k = 1, 5,
10 and the budget, beside the static ASR retried k times).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from custodes.evals.adaptive import AttackerChat, AttackSettings, attack_behaviour
from custodes.evals.judges import Judge
from custodes.evals.metrics import OVERALL, best_of_k, wilson_interval
from custodes.evals.models import SUCCESS_OUTCOMES, Behaviour, Outcome
from custodes.evals.results import AdaptiveFigures, AsrAtK, EvalResult, SampleRecord, judge_info
from custodes.evals.rundir import RunDir, done_samples
from custodes.evals.runner import Progress, RunSettings, run_samples, summarise_epoch, work_items
from custodes.evals.suite import BASELINE_FAMILY, Suite
from custodes.evals.targets import Target

__all__ = ["AttackRequest", "adaptive_figures", "run_attack"]


# --- figures ------------------------------------------------------------------------------


def _ks(budget: int) -> list[int]:
    return sorted({k for k in (1, 5, 10) if k <= budget} | {budget})


def _at_k(records: Sequence[SampleRecord], k: int, static: float | None) -> AsrAtK:
    # As the family's ASR counts them: errors and undetermined verdicts leave the
    # denominator, so ASR@budget equals the family's success-within-budget rate.
    valid = [r for r in records if r.judged not in (None, Outcome.ERROR)]
    wins = sum(1 for r in valid if r.first_success is not None and r.first_success <= k)
    return AsrAtK(
        k=k,
        successes=wins,
        behaviours=len(valid),
        asr=wins / len(valid) if valid else None,
        wilson=wilson_interval(wins, len(valid)),
        static_at_k=None if static is None else best_of_k(static, k),
    )


def adaptive_figures(
    records: Sequence[SampleRecord], settings: AttackSettings, static_asr: float | None
) -> AdaptiveFigures:
    """Success within the budget, queries spent and ASR@k (k = 1, 5, 10, budget)."""
    mine = [r for r in records if r.family_id == settings.method]
    firsts = [r.first_success for r in mine if r.first_success is not None]
    errors = sum(1 for r in mine if r.outcome is Outcome.ERROR)
    return AdaptiveFigures(
        method=settings.method,
        budget=settings.budget,
        behaviours=len(mine),
        successes=len(firsts),
        errors=errors,
        queries=sum(r.queries or 0 for r in mine),
        median_queries_to_success=statistics.median(firsts) if firsts else None,
        attacker_failures=sum(r.attacker_failures for r in mine),
        static_asr=static_asr,
        at_k=tuple(_at_k(mine, k, static_asr) for k in _ks(settings.budget)),
        parameters=settings.parameters(),
    )


# --- a whole run --------------------------------------------------------------------------


@dataclass(frozen=True)
class AttackRequest:
    """What ``custodes eval attack`` asks for. ``limit``: the first N must-refuse items."""

    suite: Suite
    suite_source: str
    target: Target
    judge: Judge
    attacker: AttackerChat
    settings: AttackSettings
    out: Path
    epoch: int = 0
    model: str | None = None
    agent_id: str | None = None
    limit: int | None = None

    def behaviours(self) -> list[Behaviour]:
        chosen = [b for b in self.suite.behaviours if b.kind == "must_refuse"]
        return chosen[: self.limit] if self.limit else chosen


def _static_asr(records: Sequence[SampleRecord]) -> float | None:
    judged = [r.judged for r in records if r.family_id == BASELINE_FAMILY]
    valid = [o for o in judged if o is not None and o is not Outcome.ERROR]
    return sum(1 for o in valid if o in SUCCESS_OUTCOMES) / len(valid) if valid else None


async def _adaptive(
    request: AttackRequest,
    behaviours: Sequence[Behaviour],
    run: RunDir,
    settings: RunSettings,
    advance: Callable[[int], None],
) -> None:
    gate = asyncio.Semaphore(settings.concurrency)

    async def one(behaviour: Behaviour) -> None:
        async with gate:
            record = await attack_behaviour(
                behaviour,
                request.target,
                request.judge,
                request.attacker,
                request.settings,
                epoch=request.epoch,
                run=settings,
            )
        await asyncio.to_thread(run.samples.append, [record])
        advance(1)

    try:
        await asyncio.gather(*(one(b) for b in behaviours))
    finally:
        for thing in (request.target, request.attacker):
            close = getattr(thing, "aclose", None)
            if close is not None:
                await close()


def run_attack(
    request: AttackRequest, *, settings: RunSettings | None = None, progress: Progress | None = None
) -> EvalResult:
    """Run (or resume) one epoch of an adaptive attack in ``request.out``.

    The plain request (the suite's no-attack family) is sent once per behaviour as
    well, so the static ASR that best-of-k is set beside comes from the same target
    and judge.
    """
    settings = settings or RunSettings()
    run = RunDir.create_or_resume(
        request.out,
        request.suite,
        suite_source=request.suite_source,
        judge=judge_info(request.judge),
        attempts=1,
    )
    run.begin_epoch(
        request.epoch, target=request.target.description, model=request.model,
        agent_id=request.agent_id,
    )  # fmt: skip
    done = done_samples(run.records(), request.epoch)
    chosen = request.behaviours()
    ids = {b.id for b in chosen}
    static = [
        item
        for item in work_items(request.suite, 1, done)
        if item.behaviour.id in ids and item.probe.family_id == BASELINE_FAMILY
    ]
    todo = [b for b in chosen if f"{b.id}:{request.settings.method}:0" not in done]
    total, counted = len(done) + len(static) + len(todo), [len(done)]

    def advance(count: int) -> None:
        counted[0] += count
        if progress is not None:
            progress(counted[0], total)

    async def everything() -> None:
        await run_samples(
            static, request.target, request.judge, run.samples.append,
            epoch=request.epoch, settings=settings, progress=advance,
        )  # fmt: skip
        await _adaptive(request, todo, run, settings, advance)

    advance(0)
    asyncio.run(everything())
    records = run.records(request.epoch)
    figures = adaptive_figures(records, request.settings, _static_asr(records))
    result = _uncorrected(summarise_epoch(run, request.epoch, request.suite, (figures,)))
    run.write_result(result)
    return result


def _uncorrected(result: EvalResult) -> EvalResult:
    """No judge-corrected interval for a search: it stops at the first judged success,
    so the judge's per-answer false positives compound over the queries, and a
    correction from per-answer Se/Sp would understate them. The static family keeps its."""
    methods = {f.method for f in result.adaptive} | {OVERALL}
    families = tuple(
        f.model_copy(update={"corrected": None}) if f.family in methods else f
        for f in result.families
    )
    return result.model_copy(update={"families": families})
