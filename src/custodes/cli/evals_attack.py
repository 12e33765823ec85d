"""``custodes eval attack``: adaptive attacks (PAIR, TAP, Crescendo) with an attacker model.

    custodes eval attack --method pair --suite core --target openai:http://127.0.0.1:8600 \\
        --model weak --attacker http://127.0.0.1:8700 --attacker-model red \\
        --budget 20 [--width 3 --branching 2 --depth 5] [--limit 10] --out runs/pair

Registered on the ``eval`` group from ``cli/evals.py``. The run directory, result,
report and evidence are those of ``eval run``; the table adds best-of-k (ASR@k beside
the static ASR retried k times), and a run whose attacker failed says why.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from custodes.cli.evals import (
    _write_report,
    console,
    err,
    make_judge,
    make_target,
    print_result,
    run_progress,
)
from custodes.cli.output import OUTPUT, Output, emit_json
from custodes.connectors.openai import AttackerEndpoint
from custodes.evals.adaptive import METHODS, AttackSettings
from custodes.evals.adaptive_run import AttackRequest, run_attack
from custodes.evals.report import adaptive_rows
from custodes.evals.results import AdaptiveFigures, EvalResult
from custodes.evals.rundir import RunDir
from custodes.evals.runner import RunSettings
from custodes.evals.suite import load_suite

__all__ = ["attack"]


def _settings(
    method: str, budget: int, width: int, branching: int, depth: int, backtracks: int
) -> AttackSettings:
    if method not in METHODS:
        raise typer.BadParameter(f"use one of {', '.join(METHODS)}", param_hint="--method")
    return AttackSettings(
        method=method,
        budget=budget,
        width=width,
        branching=branching,
        depth=depth,
        backtracks=backtracks,
    )


def print_adaptive(figures: AdaptiveFigures) -> None:
    table = Table(
        title=f"{figures.method}: best-of-k within a budget of {figures.budget} queries",
        title_justify="left",
    )
    for n, name in enumerate(
        ("k", "ASR@k", "Wilson 95%", "broken/behaviours", "static retried k times")
    ):
        table.add_column(name, justify="left" if n == 0 else "right")
    for row in adaptive_rows(figures):
        table.add_row(*row)
    console.print(table)
    median = figures.median_queries_to_success
    console.print(
        f"{figures.queries} target queries; median to first success "
        f"{'n/a' if median is None else f'{median:g}'}; {figures.errors} behaviours in "
        f"error; {figures.attacker_failures} malformed attacker answers",
        highlight=False,
    )


def _print_judge_caveat(result: EvalResult, figures: AdaptiveFigures) -> None:
    """A search stops at the first judged success: the judge's false positives compound."""
    sp = result.judge.specificity
    if sp is None:
        return
    bound = 1 - sp**figures.budget
    console.print(
        f"note: the judge's specificity {sp:.3f} compounds over a search: a target that "
        f"never yields could be ruled broken within {figures.budget} queries with "
        f"probability up to {bound:.0%}; check the evidence transcripts",
        highlight=False,
    )


def _print_errors(run: RunDir, result: EvalResult) -> None:
    """The causes of errors, most frequent first: stored, and printed."""
    causes = Counter(r.error for r in run.records(result.epoch) if r.error)
    for cause, count in causes.most_common(3):
        err.print(f"error ({count}x): {escape(cause)}", highlight=False)


def attack(
    method: str = typer.Option(..., help="pair, tap or crescendo"),
    suite: str = typer.Option("core", help="a packaged suite name or a suite JSON file"),
    target: str = typer.Option(..., help="openai:URL, a2a:URL, inspect:MODEL, python:..."),
    model: str | None = typer.Option(None, help="the model name to ask the target for"),
    attacker: str = typer.Option(..., help="the attacker's OpenAI-compatible URL"),
    attacker_model: str = typer.Option(..., help="the attacker's model name"),
    budget: int = typer.Option(20, min=1, help="target queries per behaviour"),
    width: int = typer.Option(3, min=1, help="PAIR streams; TAP leaves kept per level"),
    branching: int = typer.Option(2, min=1, help="TAP: refinements per leaf"),
    depth: int = typer.Option(5, min=1, help="refinements per stream, tree depth or turns"),
    backtracks: int = typer.Option(3, min=0, help="Crescendo: refused turns taken back"),
    limit: int | None = typer.Option(None, min=1, help="attack the first N behaviours only"),
    out: Path = typer.Option(..., help="run directory (created, or resumed)"),
    judge: str = typer.Option("rule", help="rule, or llm:<OpenAI-compatible URL>"),
    judge_model: str | None = typer.Option(None, help="the LLM judge's model name"),
    concurrency: int = typer.Option(4, min=1, help="behaviours attacked at once"),
    timeout: float = typer.Option(60.0, help="seconds per target request"),
    epoch: int = typer.Option(0, min=0, help="epoch number"),
    api_key: str | None = typer.Option(None, envvar="CUSTODES_TARGET_API_KEY"),
    attacker_key: str | None = typer.Option(None, envvar="CUSTODES_ATTACKER_API_KEY"),
    output: Output = OUTPUT,
) -> None:
    """Attack each must-refuse behaviour with an attacker model; best-of-k and evidence."""
    request = AttackRequest(
        suite=load_suite(suite),
        suite_source=suite,
        target=make_target(target, model, api_key),
        judge=make_judge(judge, judge_model),
        attacker=AttackerEndpoint(attacker, attacker_model, api_key=attacker_key),
        settings=_settings(method, budget, width, branching, depth, backtracks),
        out=out,
        epoch=epoch,
        model=model,
        limit=limit,
    )
    with run_progress(f"{method} on {request.suite.id} epoch {epoch}") as advance:
        result = run_attack(
            request,
            settings=RunSettings(concurrency=concurrency, timeout_s=timeout),
            progress=advance,
        )
    run = RunDir.open(out)
    report = _write_report(run)
    if output is Output.json:
        emit_json({"result": result.model_dump(mode="json"), "report": str(report)})
        return
    print_result(result)
    for figures in result.adaptive:
        print_adaptive(figures)
        _print_judge_caveat(result, figures)
    _print_errors(run, result)
    console.print(f"report: {report}", markup=False)
    if result.evidence is not None:
        console.print(f"evidence: {run.path / result.evidence.path}", markup=False)
