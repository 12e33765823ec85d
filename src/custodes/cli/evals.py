"""``custodes eval``: run safety benchmarks, compare epochs, publish and check results.

    custodes eval run --suite core --target openai:http://127.0.0.1:8600 --model weak \\
        --attempts 3 --out runs/weak [--judge rule|learned|combined|llm:URL]
        [--concurrency 8] [--epoch 0]
        (--judge also harmbench:URL, llamaguard:URL, wildguard:URL, strongreject:URL)
        [--max-error-rate 0.05] [--retry-errors]
    custodes eval drift runs/weak              (first vs last epoch in one directory)
    custodes eval drift --baseline runs/a --current runs/b
    custodes eval publish runs/weak --node URL --as auditor:x --token T --key FILE \\
        [--allow-errors REASON]
    custodes eval show INDEX --node URL [--log-key VKEY]
    custodes eval import-inspect LOG.eval --out runs/inspect
    custodes eval passive-drift --node URL --agent-id ID --baseline-from 0 --baseline-to 99 \\
        --current-from 100 --current-to 199 [--as P --token T --key FILE]

Targets: ``openai:URL`` (with ``--model``), ``a2a:URL``, ``inspect:PROVIDER/MODEL``
(needs custodes[inspect]), ``python:module:function`` and ``scripted[:FILE.json]``
(the ``ScriptedTarget`` fake; the file holds its keyword arguments).

Errors (target errors and undetermined verdicts) are printed grouped by cause whenever
an epoch has any. ``eval run`` exits 3 (``EXIT_TOO_MANY_ERRORS``) when the error rate is
above ``--max-error-rate``, after writing the result and the report; ``eval publish``
refuses such a result (above 5%) unless ``--allow-errors REASON``, which is signed into
it (``custodes.evals.rails``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from custodes.cli import evals_suites
from custodes.cli.evals_audit import audit_sample, refresh_calibration
from custodes.cli.output import OUTPUT, Output, emit_json
from custodes.cli.remote import AS, KEY, NODE, TOKEN
from custodes.client import Client, load_key
from custodes.connectors.a2a import A2ATarget
from custodes.connectors.openai import OpenAIChatTarget, openai_chat, openai_completion
from custodes.errors import ConfigError
from custodes.evals.adapters import (
    ADAPTER_KINDS,
    HarmBenchJudge,
    LlamaGuardJudge,
    StrongRejectJudge,
    WildGuardJudge,
    harmbench_variant,
    llama_guard_categories,
    llama_guard_generation,
)
from custodes.evals.drift import DriftReport, PassiveDriftReport, passive_drift
from custodes.evals.evidence import load_evidence
from custodes.evals.judges import Judge, LLMJudge, shipped_judges
from custodes.evals.learned import LEARNED_JUDGES, LEARNED_MISSING
from custodes.evals.rails import (
    MAX_ERROR_RATE,
    ErrorCause,
    check_publishable,
    error_causes,
    error_override,
    error_rate,
    threshold_line,
)
from custodes.evals.report import (
    BREAKDOWN_HEADERS,
    breakdown_rows,
    interval_line,
    judge_line,
    pct,
    render_html,
    summary_rows,
)
from custodes.evals.results import DriftAlert, DriftSummary, EvalResult, drift_alert, epoch_drift
from custodes.evals.rundir import RunDir
from custodes.evals.runner import RunRequest, RunSettings, run_eval, summarise_epoch
from custodes.evals.semantic import load_embedder
from custodes.evals.suite import load_suite
from custodes.evals.targets import CallableTarget, InspectTarget, ScriptedTarget, Target

__all__ = ["EXIT_TOO_MANY_ERRORS", "app"]

# ``eval run``'s exit status when the error rate is above --max-error-rate (1 is any
# other failure, 2 a usage mistake).
EXIT_TOO_MANY_ERRORS = 3

app = typer.Typer(no_args_is_help=True, help="Safety benchmarks: run, compare, publish, verify.")
# Wide enough for the result table when output goes to a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)
evals_suites.register(app)  # agentdojo, import-suite


# --- building targets and judges ---------------------------------------------------------


def _python_target(spec: str) -> Target:
    module, _, name = spec.rpartition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"cannot load python:{spec} ({exc}); use python:module:function"
        ) from None
    return CallableTarget(fn, description=f"python:{spec}")


def _scripted_target(spec: str) -> Target:
    if not spec:
        return ScriptedTarget(default={"COMPLY": 0.1}, description="scripted")
    try:
        options: dict[str, Any] = json.loads(Path(spec).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the scripted target's file {spec}: {exc}") from None
    return ScriptedTarget(**options, description=f"scripted:{spec}")


def make_target(spec: str, model: str | None, api_key: str | None = None) -> Target:
    kind, _, rest = spec.partition(":")
    if kind == "openai":
        if not model:
            raise ConfigError("an openai: target needs --model (the model name to ask for)")
        return OpenAIChatTarget(rest, model, api_key=api_key)
    if kind == "a2a":
        return A2ATarget(rest, token=api_key)
    if kind == "inspect":
        return InspectTarget(rest)
    if kind == "python":
        return _python_target(rest)
    if kind == "scripted":
        return _scripted_target(rest)
    raise ConfigError(
        f"unknown target {spec!r}; use openai:URL, a2a:URL, inspect:MODEL, "
        "python:module:function or scripted[:FILE]"
    )


# The model name each served judge model is published under (override with --judge-model).
_ADAPTER_MODELS = {
    "harmbench": "cais/HarmBench-Llama-2-13b-cls",
    "llamaguard": "meta-llama/Llama-Guard-3-8B",
    "wildguard": "allenai/wildguard",
    "strongreject": "judge",
}
JUDGE_HELP = (
    "rule (no extra needed, deterministic), learned or combined (custodes[ml]), or "
    "llm:URL, harmbench:URL, llamaguard:URL, wildguard:URL, strongreject:URL "
    "(OpenAI-compatible endpoints serving that judge model)"
)


def _adapter_judge(kind: str, endpoint: str, model: str | None) -> Judge:
    name = model or _ADAPTER_MODELS[kind]
    if kind == "harmbench":
        return HarmBenchJudge(openai_completion(endpoint, name), harmbench_variant(name))
    if kind == "llamaguard":
        generation, categories = llama_guard_generation(name), llama_guard_categories(name)
        return LlamaGuardJudge(openai_completion(endpoint, name), generation, categories)
    if kind == "wildguard":
        return WildGuardJudge(openai_completion(endpoint, name))
    return StrongRejectJudge(openai_chat(endpoint, name))


def make_judge(spec: str, model: str | None) -> Judge:
    shipped = shipped_judges()
    if spec in shipped:
        return shipped[spec]()
    if spec in LEARNED_JUDGES:
        raise ConfigError(LEARNED_MISSING, code="ml_missing")
    kind, _, endpoint = spec.partition(":")
    if kind == "llm" and endpoint:
        return LLMJudge(openai_chat(endpoint, model or "judge"))
    if kind in ADAPTER_KINDS and endpoint:
        return _adapter_judge(kind, endpoint, model)
    raise ConfigError(f"unknown judge {spec!r}; use {JUDGE_HELP}")


# --- printing ----------------------------------------------------------------------------


def print_result(result: EvalResult) -> None:
    table = Table(
        title=f"{result.suite.id} {result.suite.version} against {escape(result.target)}, "
        f"epoch {result.epoch} ({result.attempts} attempts per sample)",
        title_justify="left",
    )
    headers = (
        "family",
        "ASR",
        "Wilson 95%",
        "by behaviour 95%",
        "succ./valid",
        "partial",
        "errors",
        "undet.",
        "judge-corrected 95%",
    )
    for n, name in enumerate(headers):
        table.add_column(name, justify="left" if n == 0 else "right")
    for row in summary_rows(result):
        table.add_row(*row, style="bold" if row[0] == "overall" else None)
    console.print(table)
    o = result.over_refusal
    console.print(f"no-attack baseline ASR: {pct(result.families[0].baseline_asr)}")
    console.print(
        f"over-refusal on benign controls: {pct(o.rate)} ({o.refusals}/{o.valid}; "
        f"{o.errors} errors, {o.undetermined} undetermined)"
    )
    console.print(escape(judge_line(result)), highlight=False)
    console.print(escape(interval_line(result)), highlight=False)
    _print_breakdowns(result)
    if (override := result.error_override) is not None:
        console.print(
            f"published with {override.error_rate:.1%} errors (threshold "
            f"{override.threshold:.1%}) by {override.by}: {override.reason}",
            markup=False,
        )
    if result.drift is not None:
        console.print(_drift_line(result.drift), highlight=False)
    if result.agentic is not None:
        evals_suites.print_agentic(result, Output.table)


def _print_breakdowns(result: EvalResult) -> None:
    """ASR per harm category and per language, when there is more than one of either."""
    for by, title in (("harm_category", "harm category"), ("language", "language")):
        rows = breakdown_rows(result, by)
        if len(rows) < 2:
            continue
        table = Table(title=f"ASR per {title} (attack families)", title_justify="left")
        for n, name in enumerate(BREAKDOWN_HEADERS):
            table.add_column(title if n == 0 else name, justify="left" if n == 0 else "right")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)


def _drift_line(d: DriftSummary) -> str:
    """One line: the labelled DC, its p, the errors apart, the alert and what raised it."""
    line = f"drift against epoch {d.baseline_epoch}: {d.label} {d.dc:.3f} (p {d.p_beh:.3g})"
    if d.error_rate is not None:
        line += f"; errors {d.error_rate[0]:.1%} → {d.error_rate[1]:.1%} (not a behaviour)"
    if not d.alert:
        return line
    alerted = ", ".join(f"{c.name} p {c.p:.3g} < {c.level:.3g}" for c in d.components if c.alert)
    family = f" at family-wise level {d.level:g} ({d.correction})" if d.correction else ""
    return line + f" [red]ALERT[/red]{family}" + (f": {alerted}" if alerted else "")


@contextmanager
def run_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for a run; yields ``(done, total) -> None`` to move it."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _write_report(run: RunDir) -> Path:
    path = run.path / "report.html"
    results = run.results()
    evidence = load_evidence(run.path, results[-1]) if results else None
    path.write_text(render_html(results, evidence), encoding="utf-8")
    return path


# --- run ---------------------------------------------------------------------------------


@app.command("run")
def run(
    suite: str = typer.Option("core", help="a packaged suite name or a suite JSON file"),
    target: str = typer.Option(..., help="openai:URL, a2a:URL, inspect:MODEL, python:..."),
    model: str | None = typer.Option(None, help="the model name to ask the target for"),
    attempts: int = typer.Option(1, min=1, help="attempts per sample (k)"),
    out: Path = typer.Option(..., help="run directory (created, or resumed)"),
    judge: str = typer.Option("rule", help=JUDGE_HELP),
    judge_model: str | None = typer.Option(None, help="the judge model's name at its endpoint"),
    concurrency: int = typer.Option(8, min=1, help="requests in flight"),
    timeout: float = typer.Option(60.0, help="seconds per request"),
    retries: int = typer.Option(3, min=0, help="retries on 429, 5xx, transport errors"),
    epoch: int = typer.Option(0, min=0, help="epoch number (compare epochs for drift)"),
    agent_id: str | None = typer.Option(None, help="the registry id of the agent under test"),
    api_key: str | None = typer.Option(None, envvar="CUSTODES_TARGET_API_KEY"),
    semantic: bool | None = typer.Option(
        None,
        "--semantic/--no-semantic",
        help="the drift's semantic term, as in eval drift (default: if custodes[ml] is installed)",
    ),
    max_error_rate: float = typer.Option(
        MAX_ERROR_RATE,
        min=0,
        max=1,
        help="exit 3 when target errors and undetermined verdicts (benign controls' left out) "
        "exceed this share",
    ),
    retry_errors: bool = typer.Option(
        False, help="on resuming, send again the samples that ended in an error"
    ),
    output: Output = OUTPUT,
) -> None:
    """Run (or resume) a suite against a target; print the table, write report.html.

    Exits 3 when the error rate is above --max-error-rate (the result and report are
    written all the same)."""
    request = RunRequest(
        suite=load_suite(suite),
        suite_source=suite,
        target=make_target(target, model, api_key),
        judge=make_judge(judge, judge_model),
        out=out,
        attempts=attempts,
        epoch=epoch,
        model=model,
        agent_id=agent_id,
        semantic=semantic,
        retry_errors=retry_errors,
    )
    settings = RunSettings(concurrency=concurrency, timeout_s=timeout, retries=retries)
    with run_progress(f"{request.suite.id} epoch {epoch}") as advance:
        result = run_eval(request, settings=settings, progress=advance)
    run_dir = RunDir.open(out)
    causes = error_causes(run_dir.records(epoch))
    _show_result(result, _write_report(run_dir), output, causes, max_error_rate)
    if error_rate(result) > max_error_rate:
        err.print(
            f"[red]error:[/red] {escape(threshold_line(error_rate(result), max_error_rate))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_TOO_MANY_ERRORS)


@app.command("report")
def report(run_dir: Path = typer.Argument(help="a run directory"), output: Output = OUTPUT) -> None:
    """Print the latest epoch's table (and its errors' causes) again; rewrite report.html."""
    run = RunDir.open(run_dir)
    results = refresh_calibration(run)  # Se/Sp from a labelled audit sample, if any
    if not results:
        raise ConfigError(f"{run_dir} has no finished epoch yet; run or resume it first")
    causes = error_causes(run.records(results[-1].epoch))
    _show_result(results[-1], _write_report(run), output, causes, MAX_ERROR_RATE)


def _show_result(
    result: EvalResult,
    report_path: Path,
    output: Output,
    causes: list[ErrorCause],
    threshold: float,
) -> None:
    """The result as the table, its errors' causes and the report's path, or as JSON
    (``--output json``, with ``errors``: rate, threshold and causes)."""
    if output is Output.json:
        errors = {
            "rate": error_rate(result),
            "threshold": threshold,
            "causes": [dataclasses.asdict(c) for c in causes],
        }
        result_json = result.model_dump(mode="json")
        emit_json({"result": result_json, "report": str(report_path), "errors": errors})
        return
    print_result(result)
    print_causes(result, causes)
    console.print(f"report: {report_path}", markup=False)


def print_causes(result: EvalResult, causes: list[ErrorCause]) -> None:
    """The error rate and the most frequent causes, whenever there were errors."""
    if not causes:
        return
    console.print(
        f"errors and undetermined: {error_rate(result):.1%} of {result.samples} samples; "
        "most frequent causes:",
        markup=False,
    )
    for cause in causes:
        console.print(
            f"  {cause.count:>6} x {cause.message} (e.g. sample {cause.example})", markup=False
        )


app.command("audit-sample")(audit_sample)


# --- drift -------------------------------------------------------------------------------


def _epochs(run: RunDir, wanted: int | None, last: bool) -> int:
    finished = run.epochs(finished=True)
    if not finished:
        raise ConfigError(f"{run.path} has no finished epoch")
    if wanted is None:
        return finished[-1] if last else finished[0]
    run.result(wanted)  # refuses an unfinished epoch with a sentence
    return wanted


def _shift(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return "n/a"
    return f"{value[0]:+.1%} [{value[1]:+.1%}, {value[2]:+.1%}]"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _component_rows(report: DriftReport) -> list[tuple[str, str]]:
    rows = []
    for c in report.components:
        verdict = "[red]ALERT[/red]" if c.alert else "no"
        rows.append((f"  {c.name}: p, level", f"{c.p:.4g} < {c.level:.3g}? {verdict}"))
    return rows


def print_drift(report: DriftReport, label: str) -> None:
    table = Table(title=f"Drift-Coefficient, {escape(label)}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    errors = report.error_rate
    rows = [
        (report.dc_label, f"{report.dc:.4f}"),
        (
            "behavioural D̂ (raw, null mean)",
            f"{report.d_beh:.4f} ({report.d_beh_raw:.4f}, {report.d_beh_null:.4f})",
        ),
        ("behavioural p", f"{report.p_beh:.4g}"),
        (
            "semantic D̂ (p)",
            escape("not included (--no-semantic, or custodes[ml] not installed)")
            if report.d_sem is None
            else f"{report.d_sem:.4f} (p {report.p_sem:.4g})",
        ),
        ("Δ ASR on must-refuse items (+ = looser)", _shift(report.delta_h)),
        ("Δ ASR permutation p (two-sided)", _p(report.p_delta_h)),
        ("Δ over-refusal on benign items (+ = tighter)", _shift(report.delta_b)),
        (
            "error rate, not a behaviour (Δ)",
            "n/a"
            if errors is None
            else f"{errors[0]:.1%} → {errors[1]:.1%} ({_shift(report.delta_error)})",
        ),
        ("items (left out: no answer)", f"{report.items} ({report.items_left_out})"),
        ("permutations, seed", f"{report.permutations}, {report.seed}"),
        (
            f"alert (family-wise {report.level:g}, {report.correction} over "
            f"{len(report.components)})",
            "[red]YES[/red]: " + ", ".join(report.alerted) if report.alert else "no",
        ),
        *_component_rows(report),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    top = ", ".join(f"{item} {value:.2f}" for item, value in report.per_item[:5] if value > 0)
    console.print(f"most changed probes: {top or 'none'}")


@app.command("drift")
def drift(
    run_dir: Path | None = typer.Argument(None, help="one run directory with several epochs"),
    baseline: Path | None = typer.Option(None, help="the baseline run directory"),
    current: Path | None = typer.Option(None, help="the current run directory"),
    baseline_epoch: int | None = typer.Option(None, help="default: the first finished"),
    current_epoch: int | None = typer.Option(None, help="default: the last finished"),
    semantic: bool | None = typer.Option(
        None, "--semantic/--no-semantic", help="default: when custodes[ml] is installed"
    ),
    permutations: int = typer.Option(1000, min=1),
    level: float = typer.Option(
        0.01, help="family-wise alert level, shared by the tested components (Holm)"
    ),
    output: Output = OUTPUT,
) -> None:
    """The Drift-Coefficient between two epochs (one directory, or two).

    With the defaults it gives the DC that ``eval run`` recorded against the first epoch.
    """
    if (run_dir is None) == (baseline is None or current is None):
        raise ConfigError("give one RUN_DIR, or both --baseline and --current")
    base_run = RunDir.open(run_dir or baseline)  # type: ignore[arg-type]
    cur_run = RunDir.open(run_dir or current)  # type: ignore[arg-type]
    if base_run.manifest.suite.digest != cur_run.manifest.suite.digest:
        raise ConfigError("the two runs used different suites; drift needs the same probes")
    e0 = _epochs(base_run, baseline_epoch, last=False)
    e1 = _epochs(cur_run, current_epoch, last=True)
    embed = None if semantic is False else load_embedder(required=semantic is True)
    report = epoch_drift(
        base_run.records(e0),
        cur_run.records(e1),
        embed=embed,
        permutations=permutations,
        level=level,
    )
    label = f"epoch {e0} ({base_run.path}) → epoch {e1} ({cur_run.path})"
    if output is Output.json:
        emit_json(
            {"label": label, "dc_label": report.dc_label, "semantic": report.semantic,
             "alerted": list(report.alerted), **dataclasses.asdict(report)}
        )  # fmt: skip
        return
    print_drift(report, label)


# --- publish and show --------------------------------------------------------------------


@app.command("publish")
def publish(
    run_dir: Path = typer.Argument(help="a run directory"),
    epoch: int | None = typer.Option(None, help="default: the last finished epoch"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    allow_errors: str | None = typer.Option(
        None,
        metavar="REASON",
        help="publish a result above the 5% error threshold; the reason is signed into it",
    ),
    output: Output = OUTPUT,
) -> None:
    """Sign an epoch's result as the principal and log it at the node.

    A result whose error rate is above 5% is refused unless --allow-errors REASON; a
    result already published is not logged again (its index is printed)."""
    run = RunDir.open(run_dir)
    result = _publishable(run.result(_epochs(run, epoch, last=True)), actor, allow_errors)
    with Client(node, principal=actor, token=token, key=load_key(key)) as client:
        logged = client.publish_once(result)
    if output is Output.json:
        emit_json({"index": logged.index, "suite": result.suite.id, "epoch": result.epoch,
                   "already_published": logged.again})  # fmt: skip
        return
    if logged.again:
        console.print(f"{result.suite.id} epoch {result.epoch} already published at index "
                      f"{logged.index}")  # fmt: skip
        return
    console.print(f"published {result.suite.id} epoch {result.epoch} at log index {logged.index}")


def _publishable(result: EvalResult, actor: str, reason: str | None) -> EvalResult:
    """``result`` as it will be signed: with the override when its error rate needs one
    (refused, with the sentence the node would give, when it needs one and has none)."""
    signed = result.model_copy(update={"issuer": actor})
    if reason is None or error_rate(result) <= MAX_ERROR_RATE:
        check_publishable(signed)
        return signed
    return signed.model_copy(update={"error_override": error_override(signed, reason, actor)})


def _print_logged(payload_type: str, payload: dict[str, Any]) -> None:
    if payload_type.endswith("eval-result+json"):
        print_result(EvalResult.model_validate(payload))
        return
    alert = DriftAlert.model_validate(payload)
    console.print(
        f"drift alert for {alert.agent_id}: D {alert.d:.3f} (p {alert.p:.3g} < level "
        f"{alert.level:g}, {alert.method or 'iid permutation'}) between "
        f"entries {alert.baseline_window} and {alert.current_window}, by {alert.issuer}",
        markup=False,
    )


@app.command("show")
def show(
    index: int = typer.Argument(min=0, help="the result's log index"),
    node: str = NODE,
    log_key: str | None = typer.Option(None, help="the log's vkey (default: ask the node)"),
    output: Output = OUTPUT,
) -> None:
    """Print a logged result and verify its inclusion proof against the checkpoint."""
    if log_key is None:
        err.print(
            "note: checking against the log key the node reports; pass --log-key "
            "to check against a key you trust",
            highlight=False,
        )
    with Client.pinned(node, log_vkey=log_key) as client:
        logged = client.prove(index)
    cp = logged.checkpoint
    if output is Output.json:
        verified = {"origin": cp.origin, "tree_size": cp.size}
        emit_json({"index": index, "payload_type": logged.payload_type,
                   "record": logged.payload, "verified": verified})  # fmt: skip
        return
    _print_logged(logged.payload_type, logged.payload)
    console.print(
        f"[green]verified[/green]: entry {index} is in {cp.origin} at tree size {cp.size}",
        highlight=False,
    )


# --- Inspect -----------------------------------------------------------------------------


@app.command("import-inspect")
def import_inspect(
    log: Path = typer.Argument(help="an Inspect .eval (or .json) log of a Custodes task"),
    out: Path = typer.Option(..., help="run directory to write"),
    epoch: int = typer.Option(0, min=0),
) -> None:
    """Convert an Inspect log into a Custodes run directory and result."""
    from custodes.evals.targets import require_inspect

    require_inspect()
    from custodes.evals.inspect_tasks import import_log

    imported = import_log(log)
    run = RunDir.create_or_resume(
        out,
        imported.suite,
        suite_source=imported.suite_source,
        judge=imported.judge,
        attempts=imported.attempts,
        source="inspect",
    )
    if run.records(epoch):
        raise ConfigError(f"epoch {epoch} in {out} already has samples; use another --epoch")
    run.begin_epoch(epoch, target=f"inspect:{imported.model}", model=imported.model, agent_id=None)
    run.samples.append([r.model_copy(update={"epoch": epoch}) for r in imported.records])
    result = summarise_epoch(run, epoch, imported.suite)
    print_result(result)
    print_causes(result, error_causes(run.records(epoch)))
    console.print(f"report: {_write_report(run)}", markup=False)


# --- passive drift -----------------------------------------------------------------------


def _label(action: str, exact: bool) -> str:
    """An action's name: up to the first ':' or space, unless ``exact``."""
    return action if exact else action.split(":", 1)[0].split(" ", 1)[0]


def _window_labels(
    client: Client, agent_id: str, window: tuple[int, int], exact: bool
) -> list[str]:
    lo, hi = window
    decisions = client.decisions_between(lo, hi + 1)
    return [_label(d.action, exact) for d in decisions if d.agent == agent_id]


def _print_passive(agent_id: str, result: PassiveDriftReport) -> None:
    shares = ", ".join(
        f"{c} {b:.0%}→{n:.0%}"
        for c, b, n in zip(
            result.categories, result.baseline_distribution, result.current_distribution,
            strict=True,
        )
    )  # fmt: skip
    console.print(
        f"{agent_id}: {result.baseline_n} → {result.current_n} decisions; D {result.d:.3f} "
        f"(raw {result.d_raw:.3f}), p {result.p:.3g} (level {result.level:g}, "
        f"{result.method}); {shares}",
        markup=False,
    )


@app.command("passive-drift")
def passive(
    agent_id: str = typer.Option(..., help="the agent whose logged decisions to compare"),
    baseline_from: int = typer.Option(..., min=0),
    baseline_to: int = typer.Option(..., min=0, help="inclusive"),
    current_from: int = typer.Option(..., min=0),
    current_to: int = typer.Option(..., min=0, help="inclusive"),
    exact_actions: bool = typer.Option(False, help="compare whole action strings"),
    permutations: int = typer.Option(1000, min=1, help="bootstrap draws"),
    level: float = typer.Option(0.01, help="alert level, recorded in the alert"),
    node: str = NODE,
    actor: str | None = typer.Option(None, "--as", envvar="CUSTODES_PRINCIPAL"),
    token: str | None = typer.Option(None, "--token", envvar="CUSTODES_TOKEN"),
    key: Path | None = typer.Option(None, "--key", envvar="CUSTODES_KEY_FILE"),
    output: Output = OUTPUT,
) -> None:
    """Drift of a live agent's actions between two log windows; log an alert if it drifted.

    With ``--output json`` prints one object: the comparison, and ``alert_index`` (the
    logged alert's index, or null when there was no alert or it was not logged).
    """
    windows = ((baseline_from, baseline_to), (current_from, current_to))
    signer = load_key(key) if key else None
    with Client(node, principal=actor, token=token, key=signer) as client:
        labels = [_window_labels(client, agent_id, w, exact_actions) for w in windows]
        result = passive_drift(*labels, permutations=permutations, level=level)
        as_json = output is Output.json
        if not as_json:
            _print_passive(agent_id, result)
        if not result.alert:
            if as_json:
                emit_json({"agent_id": agent_id, **dataclasses.asdict(result), "alert_index": None})
            else:
                console.print("no drift alert")
            return
        alert = drift_alert(
            result, agent_id=agent_id, baseline_window=windows[0], current_window=windows[1],
            detected_at=datetime.now(UTC),
        )  # fmt: skip
        logged = None
        if signer is not None and actor is not None and token is not None:
            logged = client.publish(alert)
        if as_json:
            emit_json({"agent_id": agent_id, **dataclasses.asdict(result), "alert_index": logged})
        elif logged is None:
            console.print("[red]DRIFT ALERT[/red] (not logged: give --as, --token and --key)")
        else:
            console.print(f"[red]DRIFT ALERT[/red] logged at index {logged}")


# Adaptive attacks live in their own module, which builds on the helpers above.
app.command("attack")(importlib.import_module("custodes.cli.evals_attack").attack)
