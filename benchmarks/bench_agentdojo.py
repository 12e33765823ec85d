"""AgentDojo through Custodes against a scripted agent on loopback: figures and overhead.

The agent (tests/evals/agentdojo_agent.py) is a real OpenAI-compatible server playing
AgentDojo's ground truth; it carries out injected goals in the banking and travel
suites and ignores them in slack and workspace. For each suite the run reports the
cases, targeted ASR, utility under attack and benign utility (counts and Wilson
intervals), and cases per second. The physical limit, measured in the same run, is
AgentDojo with no model at all: its ``GroundTruthPipeline`` over the same cases (the
environments, tools, attack and checks alone); the ratio says what the HTTP agent loop
adds. Timings are reported, never asserted.

    .venv/bin/python benchmarks/bench_agentdojo.py [--quick]   (quick: 2 user tasks/suite)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentdojo.agent_pipeline.ground_truth_pipeline import GroundTruthPipeline
from agentdojo.attacks.attack_registry import load_attack
from agentdojo.task_suite.load_suites import get_suite
from tests.evals.agentdojo_agent import ScriptedAgent, serve_agent

from custodes.evals.agentdojo import (
    AGENTDOJO_SUITES,
    BENCHMARK_VERSION,
    Case,
    agentdojo_result,
    openai_agent,
    plan_cases,
    require_agentdojo,
    run_agentdojo,
)
from custodes.evals.agentic import AgenticRate


def _cell(figure: AgenticRate) -> str:
    if figure.rate is None:
        return "-"
    low, high = figure.wilson
    return f"{figure.count}/{figure.valid} = {figure.rate:.1%} [{low:.1%}, {high:.1%}]"


def _ground_truth_seconds(cases: list[Case], suite_name: str) -> float:
    suite = get_suite(BENCHMARK_VERSION, suite_name)
    began = time.perf_counter()
    for case in cases:
        user = suite.get_user_task_by_id(case.user_task)
        injection = (
            suite.get_injection_task_by_id(case.injection_task) if case.injection_task else None
        )
        pipeline = GroundTruthPipeline(injection or user)
        pipeline.name = "local"
        injections = (
            load_attack("important_instructions", suite, pipeline).attack(user, injection)
            if injection
            else {}
        )
        suite.run_task_with_pipeline(GroundTruthPipeline(user), user, injection, injections)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    limit = 2 if parser.parse_args().quick else None
    version = require_agentdojo()
    agent = ScriptedAgent(BENCHMARK_VERSION, follows=frozenset({"banking", "travel"}))
    table = Table(title=f"AgentDojo {version}, benchmark {BENCHMARK_VERSION}, scripted agent")
    for column in ("suite", "cases", "targeted ASR", "utility under attack", "benign utility",
                   "cases/s", "ground truth cases/s", "ratio"):  # fmt: skip
        table.add_column(column)
    with serve_agent(agent) as url:
        for name in AGENTDOJO_SUITES:
            cases = plan_cases([name], limit=limit)
            began = time.perf_counter()
            run = run_agentdojo(openai_agent(url, "scripted"), cases)
            seconds = time.perf_counter() - began
            truth = _ground_truth_seconds(cases, name)
            figures = agentdojo_result(run, run_id="bench", target=url, model="scripted")
            assert figures.agentic is not None
            row = figures.agentic.suites[0]
            table.add_row(
                name, str(len(cases)), _cell(row.targeted_asr), _cell(row.utility_under_attack),
                _cell(row.benign_utility), f"{len(cases) / seconds:.1f}",
                f"{len(cases) / truth:.1f}", f"{truth / seconds:.2f}",
            )  # fmt: skip
    Console(width=200).print(table)
    print(f"model requests served: {agent.requests}")


if __name__ == "__main__":
    main()
