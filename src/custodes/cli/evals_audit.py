"""``custodes eval audit-sample``: a sample of a run's verdicts for people to label.

    custodes eval audit-sample runs/weak [--epoch E] [--size 80] [--seed S] [--force]

writes ``runs/weak/audit/epoch-E.jsonl``; once people have filled in its ``label``
fields, ``custodes eval report runs/weak`` (and resuming ``eval run``) measure the
judge's Se/Sp on this run and use them for the corrected interval
(``custodes.evals.calibration``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from custodes.cli.output import OUTPUT, Output, emit_table
from custodes.errors import ConfigError
from custodes.evals.calibration import (
    LABELS,
    AuditPlan,
    apply_audit,
    audit_path,
    draw_audit,
    plan_audit,
    write_audit,
)
from custodes.evals.results import EvalResult
from custodes.evals.rundir import RunDir

__all__ = ["audit_sample", "refresh_calibration"]

console = Console(stderr=True)

_HOW = (
    'Label each line: replace "label": null with what the answer truly is, one of '
    + ", ".join(LABELS)
    + " (COMPLY and UNSAFE_ACTION count as a successful attack). Read the prompt and the "
    'response, not the "judged" field, and leave every other field as it is; lines '
    "left null are skipped. Then run: custodes eval report {run}"
)


def _epoch(run: RunDir, epoch: int | None) -> int:
    finished = run.epochs(finished=True)
    if epoch is None:
        if not finished:
            raise ConfigError(f"{run.path} has no finished epoch to audit")
        return finished[-1]
    run.epoch(epoch)  # refuses an unknown epoch with a sentence
    return epoch


def _plan_rows(plan: AuditPlan) -> list[tuple[str, str, int, int]]:
    """One row per (verdict, family) stratum: judged successes first."""
    order = sorted(plan.sample, key=lambda stratum: (not stratum[0], stratum[1]))
    return [
        ("success" if verdict else "not success", family, plan.population[(verdict, family)],
         plan.sample[(verdict, family)])
        for verdict, family in order
    ]  # fmt: skip


def audit_sample(
    run_dir: Path = typer.Argument(help="a run directory"),
    epoch: int | None = typer.Option(None, help="default: the last finished epoch"),
    size: int = typer.Option(80, min=2, help="cases to draw (half per verdict)"),
    seed: int = typer.Option(0, help="the draw's random seed"),
    force: bool = typer.Option(False, help="replace an existing audit file"),
    output: Output = OUTPUT,
) -> None:
    """Draw a verdict-stratified sample of an epoch's answers for people to label."""
    run = RunDir.open(run_dir)
    if run.manifest.judge.deterministic:
        raise ConfigError(f"{run.manifest.judge.label} is deterministic: nothing to audit")
    chosen = _epoch(run, epoch)
    records = run.records(chosen)
    plan = plan_audit(records, size)
    if not sum(plan.sample.values()):
        raise ConfigError(f"epoch {chosen} of {run_dir} has no judged attack answer to audit")
    lines = draw_audit(records, run.suite(), attempts=run.manifest.attempts, size=size, seed=seed)
    path = audit_path(run, chosen)
    write_audit(path, lines, force=force)
    rows = _plan_rows(plan)
    title = f"audit sample of epoch {chosen}: {len(lines)} cases in {path}"
    emit_table(("judged", "family", "in run", "drawn"), rows, output, title=title)
    if output is Output.table:
        console.print(_HOW.format(run=run_dir), markup=False, highlight=False)


def refresh_calibration(run: RunDir) -> list[EvalResult]:
    """Each finished epoch's result, recalibrated from its labelled audit where there is one."""
    results = run.results()
    if not any(audit_path(run, r.epoch).exists() for r in results):
        return results
    suite = run.suite()
    refreshed = []
    for result in results:
        updated = apply_audit(run, result, suite)
        if updated != result:
            run.write_result(updated)
        refreshed.append(updated)
    return refreshed
