"""Inspect: the suite as a registered task, a real .eval log imported as a Custodes result.

The model is Inspect's mockllm with scripted outputs whose ``usage`` is set, so no
tokenizer is downloaded (plain mockllm is not offline: reference/evals.md §1).
Without inspect_ai these tests skip with the reason, except under
CUSTODES_REQUIRE_INSPECT=1 (CI installs custodes[inspect]), where they fail. The
lazy-import tests at the end run either way.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from custodes.cli.evals import app, make_target
from custodes.errors import ConfigError
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome
from custodes.evals.results import SampleRecord, judge_info
from custodes.evals.rundir import RunDir
from custodes.evals.runner import run_samples, work_items
from custodes.evals.suite import load_suite
from custodes.evals.targets import INSPECT_MISSING, InspectTarget, require_inspect

try:  # the optional extra: without it these names stay None and the tests skip (or fail)
    import inspect_ai as inspect_module
    from inspect_ai.log import read_eval_log
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.tool import ToolCall
except ImportError:
    inspect_module = None  # type: ignore[assignment]

# Inspect's own internals warn (tenacity's renamed 'initial' argument) and leave anyio
# streams to the garbage collector; neither is ours to fix, so they are not errors here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_inspect_garbage() -> Iterator[None]:
    """Collect Inspect's leftovers here, where their warnings are filtered, not in a
    later test's setup."""
    yield
    gc.collect()


def _inspect_missing() -> str | None:
    if importlib.util.find_spec("inspect_ai") is not None:
        return None
    if os.environ.get("CUSTODES_REQUIRE_INSPECT") == "1":
        pytest.fail("CUSTODES_REQUIRE_INSPECT=1 but inspect_ai is not installed")
    return "inspect_ai is not installed (pip install 'custodes[inspect]')"


@pytest.fixture(scope="module")
def inspect_ai() -> Any:
    missing = _inspect_missing()
    if missing:
        pytest.skip(missing)
    return inspect_module


BENIGN = ("Write a light-hearted joke", "How do I kill a Python process")


def scripted_output(messages: list[Any], tools: list[Any], *_: Any) -> Any:
    """Complies with base64 and benign requests, calls offered tools after a tool result,
    refuses everything else."""
    last = messages[-1]
    if last.role == "tool" and len(tools) > 1:
        calls = [ToolCall(id="c1", function=tools[-1].name, arguments={})]
        output = ModelOutput.for_tool_call("scripted", calls[0].function, {})
    elif "base64-encoded" in last.text or last.text.startswith(BENIGN):
        output = ModelOutput.from_content("scripted", "Sure! Here is exactly how to do it.")
    else:
        output = ModelOutput.from_content("scripted", "I can't help with that request.")
    output.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    return output


@pytest.fixture(scope="module")
def eval_log(inspect_ai: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    log_dir = tmp_path_factory.mktemp("inspect-logs")
    model = get_model("mockllm/model", custom_outputs=scripted_output)
    probes = list(load_suite("core").probes())
    chosen = [
        f"{p.behaviour_id}:{p.family_id}"
        for p in probes
        if p.behaviour_id
        in ("cyber-01", "fraud-02", "benign-hate-02", "benign-cyber-01", "agent-fin-email-exfil")
    ]
    logs = inspect_ai.eval(
        "custodes/custodes_core",  # resolved through the inspect_ai entry point
        task_args={"attempts": 2},
        model=model,
        sample_id=chosen,
        log_dir=str(log_dir),
        display="none",
    )
    assert logs[0].status == "success", logs[0].error
    assert logs[0].location
    return Path(logs[0].location)


def test_the_suite_is_registered_with_inspect(inspect_ai: Any) -> None:
    points = importlib.metadata.entry_points(group="inspect_ai")
    assert any(p.value == "custodes.evals.inspect_tasks" for p in points)


def test_the_log_has_our_scorer_and_metrics(eval_log: Path) -> None:
    log = read_eval_log(str(eval_log))
    score = log.results.scores[0]  # type: ignore[union-attr]
    assert score.name == "custodes_judge"
    assert score.metrics["baseline_asr"].value == 0.0
    assert score.metrics["over_refusal"].value == 0.0
    assert 0 < score.metrics["asr"].value < 1


def test_import_inspect_turns_the_log_into_the_same_result(eval_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "imported"
    answer = CliRunner().invoke(app, ["import-inspect", str(eval_log), "--out", str(out)])
    assert answer.exit_code == 0, answer.output
    result = RunDir.open(out).result(0)
    assert (result.source, result.judge.label, result.attempts) == (
        "inspect",
        f"custodes.rule@{RuleJudge.version}",
        2,
    )
    assert result.judge == judge_info(RuleJudge())  # with its published quality, if any
    assert result.model == "mockllm/model"
    assert result.target == "inspect:mockllm/model"
    log_asr = read_eval_log(str(eval_log)).results.scores[0].metrics["asr"].value  # type: ignore[union-attr]
    assert result.family("overall").asr == pytest.approx(log_asr)
    assert result.family("base64").asr == 1.0
    assert result.family("indirect-injection").asr == 1.0
    assert result.over_refusal.refusals == 0
    assert result.over_refusal.valid == 4
    records = RunDir.open(out).records(0)
    assert {r.sample_id for r in records} >= {"cyber-01:direct:0", "cyber-01:direct:1"}


class StochasticModel:
    """A scripted model that answers the same prompt differently from call to call.

    Every third call for a prompt (the first, fourth, ...) complies with an attack and
    refuses a benign control; the others refuse attacks and help benign ones. With
    three epochs each probe gets each answer a known number of times, whatever order
    Inspect runs them in, and its epochs always disagree.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, messages: list[Any], tools: list[Any], *_: Any) -> Any:
        text = messages[-1].text
        turn = self.calls[text] % 3
        self.calls[text] += 1
        flip = turn == 0
        helpful = flip != text.startswith(BENIGN)
        answer = "Sure! Here is exactly how to do it." if helpful else "I can't help with that."
        output = ModelOutput.from_content("scripted", answer)
        output.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
        return output


@pytest.fixture(scope="module")
def stochastic_log(inspect_ai: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = get_model("mockllm/model", custom_outputs=StochasticModel())
    chosen = [
        f"{p.behaviour_id}:{p.family_id}"
        for p in load_suite("core").probes()
        if p.behaviour_id in ("cyber-01", "fraud-02", "benign-hate-02", "benign-cyber-01")
    ]
    logs = inspect_ai.eval(
        "custodes/custodes_core",
        task_args={"attempts": 3},
        model=model,
        sample_id=chosen,
        log_dir=str(tmp_path_factory.mktemp("stochastic-logs")),
        display="none",
    )
    assert logs[0].status == "success", logs[0].error
    assert logs[0].location
    return Path(logs[0].location)


def test_with_disagreeing_epochs_the_log_header_has_the_custodes_asr(
    stochastic_log: Path, tmp_path: Path
) -> None:
    # Inspect's default reducer dropped `answer` when a sample's epochs disagreed, so
    # the header's metrics counted those samples as neither success nor error.
    log = read_eval_log(str(stochastic_log))
    metrics = log.results.scores[0].metrics  # type: ignore[union-attr]
    out = tmp_path / "imported"
    answer = CliRunner().invoke(app, ["import-inspect", str(stochastic_log), "--out", str(out)])
    assert answer.exit_code == 0, answer.output
    result = RunDir.open(out).result(0)
    records = RunDir.open(out).records(0)
    by_probe: dict[str, set[Outcome]] = {}
    for record in records:
        by_probe.setdefault(record.item, set()).add(record.outcome)
    assert len(records) == 3 * len(by_probe)  # one record per epoch of every probe
    assert all(len(outcomes) == 2 for outcomes in by_probe.values())  # epochs disagree
    overall = result.family("overall")
    assert (overall.successes, overall.valid) == (overall.valid // 3, overall.valid)
    assert metrics["asr"].value == pytest.approx(overall.asr)
    assert metrics["asr"].value == pytest.approx(1 / 3)
    assert metrics["baseline_asr"].value == pytest.approx(result.families[0].baseline_asr)
    assert metrics["over_refusal"].value == pytest.approx(result.over_refusal.rate)
    assert result.over_refusal.rate == pytest.approx(1 / 3)


def test_inspect_target_runs_any_inspect_model(inspect_ai: Any) -> None:
    target = InspectTarget("mockllm/model", custom_outputs=scripted_output)
    assert target.description == "inspect:mockllm/model"
    suite = load_suite("core")
    items = [
        i for i in work_items(suite, 1) if i.behaviour.id in ("cyber-01", "agent-fin-mass-email")
    ]
    records: list[SampleRecord] = []
    asyncio.run(run_samples(items, target, RuleJudge(), records.extend))
    outcomes = {(r.family_id, r.outcome) for r in records}
    assert ("base64", Outcome.COMPLY) in outcomes
    assert ("direct", Outcome.REFUSE) in outcomes
    assert ("indirect-injection", Outcome.UNSAFE_ACTION) in outcomes


# --- without inspect_ai ------------------------------------------------------------------


def test_without_inspect_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"install custodes\[inspect\]"):
        require_inspect()
    with pytest.raises(ConfigError, match=r"custodes\[inspect\]"):
        make_target("inspect:openai/gpt-4o", None)
    assert "install custodes[inspect]" in INSPECT_MISSING


def test_custodes_and_a_run_work_without_inspect(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['inspect_ai'] = None\n"
        "from custodes.cli.main import app\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, ['eval', 'run', '--target', 'scripted', '--out', "
        f"{str(tmp_path / 'run')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'overall' in r.output\n"
        "assert 'inspect_ai' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
