"""Agents under attack: AgentDojo's task suites run against an agent endpoint.

AgentDojo (Debenedetti et al. 2024, arXiv:2406.13352; PyPI ``agentdojo``, MIT) ships
four tool-using environments (banking, slack, travel, workspace), each with user tasks
and injection tasks, and prompt-injection attacks that hide an injection task's goal in
what the tools return. Its own code runs everything here: the environments, the tools,
the attack that writes the injections (``load_attack``), the agent loop
(``AgentPipeline``: system message, the user's request, then the model and the tool
executor in turn) and, after each case, the deterministic checks that decide
(``TaskSuite.run_task_with_pipeline``: the user task's ``utility`` and the injection
task's ``security``, which is True when the injection goal *was* executed). Custodes
only chooses the cases, records each one, and turns them into figures
(``custodes.evals.agentic``) and an ``EvalResult`` (``source = "agentdojo"``).

The model is any OpenAI-compatible chat endpoint with tool calling, spoken to through
AgentDojo's own ``OpenAILLM`` element (the ``openai`` client it depends on). A case
whose model call fails is recorded as an *error* with its cause; unlike AgentDojo's
benchmark loop, which scores some failures as utility False and security True, an error
here counts neither way.

``agentdojo`` is optional (``pip install 'custodes[agentdojo]'``); this module imports it
only when a run starts, and says how to install it when it is missing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from custodes.evals.agentic import AgenticRate, CaseResult, agentic_figures
from custodes.evals.metrics import OVERALL
from custodes.evals.results import EvalResult, FamilyFigures, JudgeInfo, OverRefusal, SuiteRef
from custodes.evals.suite import EvalError
from custodes.ledger.canonical import canonical_dumps

if TYPE_CHECKING:
    from agentdojo.agent_pipeline.base_pipeline_element import BasePipelineElement

__all__ = [
    "AGENTDOJO_SUITES",
    "BENCHMARK_VERSION",
    "DEFAULT_ATTACK",
    "AgentDojoRun",
    "Case",
    "agentdojo_result",
    "openai_agent",
    "pipeline_name",
    "plan_cases",
    "require_agentdojo",
    "run_agentdojo",
]

AGENTDOJO_SUITES = ("banking", "slack", "travel", "workspace")
# Pinned: results change with the benchmark version (Meta_SecAlign#5: 3.5% against 21%).
BENCHMARK_VERSION = "v1.2.2"
DEFAULT_ATTACK = "important_instructions"
CHECKS_JUDGE = "agentdojo-checks"

Progress = Callable[[CaseResult], None]


def require_agentdojo() -> str:
    """The installed AgentDojo version, or a one-line error saying how to install it."""
    try:
        import agentdojo  # noqa: F401, PLC0415 - optional extra, imported on use
    except ImportError:
        raise EvalError(
            "AgentDojo is not installed: pip install 'custodes[agentdojo]'",
            code="agentdojo_missing",
        ) from None
    return importlib.metadata.version("agentdojo")


def openai_agent(base_url: str, model: str, *, api_key: str | None = None) -> BasePipelineElement:
    """AgentDojo's ``OpenAILLM`` element speaking to an OpenAI-compatible endpoint."""
    require_agentdojo()
    import openai  # noqa: PLC0415 - optional extra
    from agentdojo.agent_pipeline.llms.openai_llm import OpenAILLM  # noqa: PLC0415 - optional extra

    # AgentDojo retries failed calls itself (three tries); the client should not add more.
    client = openai.OpenAI(
        base_url=base_url.rstrip("/").removesuffix("/v1") + "/v1",  # as OpenAIChatTarget
        api_key=api_key or "unused",
        max_retries=0,
        timeout=120.0,
    )
    llm = OpenAILLM(client, model)
    llm.name = pipeline_name(model)
    return llm


def pipeline_name(model: str) -> str:
    """The name AgentDojo knows the model by: its own, or ``local`` as AgentDojo names
    models it serves through a local OpenAI-compatible server (vLLM), which its
    ``important_instructions`` attack then addresses as "Local model"."""
    from agentdojo.models import MODEL_NAMES  # noqa: PLC0415 - optional extra

    return model if any(known in model for known in MODEL_NAMES) else "local"


@dataclass(frozen=True)
class Case:
    suite: str
    user_task: str
    injection_task: str | None


def plan_cases(
    suites: Sequence[str], *, limit: int | None = None, benchmark_version: str = BENCHMARK_VERSION
) -> list[Case]:
    """Per suite: each of the first ``limit`` user tasks alone, then with every injection."""
    require_agentdojo()
    cases: list[Case] = []
    for name in suites:
        suite = _suite(name, benchmark_version)
        users = list(suite.user_tasks)[:limit] if limit is not None else list(suite.user_tasks)
        for user in users:
            cases.append(Case(name, user, None))
            cases.extend(Case(name, user, injection) for injection in suite.injection_tasks)
    return cases


def _suite(name: str, benchmark_version: str) -> Any:
    from agentdojo.task_suite.load_suites import get_suites  # noqa: PLC0415 - optional extra

    suites = get_suites(benchmark_version)
    if name not in suites:
        raise EvalError(
            f"AgentDojo {benchmark_version} has no suite {name!r}; "
            f"choose from {', '.join(sorted(suites))}",
            code="agentdojo_unknown_suite",
        )
    return suites[name]


@dataclass(frozen=True)
class AgentDojoRun:
    package_version: str
    benchmark_version: str
    attack: str
    cases: tuple[CaseResult, ...]
    digest: str
    started_at: datetime
    finished_at: datetime


def _pipeline(llm: BasePipelineElement) -> Any:
    from agentdojo.agent_pipeline.agent_pipeline import (  # noqa: PLC0415 - optional extra
        AgentPipeline,
        PipelineConfig,
    )

    config = PipelineConfig(
        llm=llm, model_id=None, defense=None, system_message_name=None, system_message=None
    )
    return AgentPipeline.from_config(config)


def _attack(name: str, suite: Any, pipeline: Any) -> Any:
    from agentdojo.attacks.attack_registry import ATTACKS, load_attack  # noqa: PLC0415 - optional extra

    if name not in ATTACKS:
        raise EvalError(
            f"AgentDojo has no attack {name!r}; choose from {', '.join(sorted(ATTACKS))}",
            code="agentdojo_unknown_attack",
        )
    try:
        return load_attack(name, suite, pipeline)
    except ValueError as exc:  # the attack names the model, and does not know this one
        raise EvalError(
            f"AgentDojo's {name} attack cannot address model {pipeline.name!r} ({exc}); "
            "choose another --attack",
            code="agentdojo_attack_unusable",
        ) from None


def _run_case(case: Case, suite: Any, pipeline: Any, attack: Any) -> CaseResult:
    user = suite.get_user_task_by_id(case.user_task)
    injection = None
    injections: dict[str, str] = {}
    if case.injection_task is not None:
        injection = suite.get_injection_task_by_id(case.injection_task)
        injections = attack.attack(user, injection)
    try:
        utility, security = suite.run_task_with_pipeline(pipeline, user, injection, injections)
    except Exception as exc:
        return CaseResult(case.suite, case.user_task, case.injection_task, error=_cause(exc))
    return CaseResult(case.suite, case.user_task, case.injection_task, utility, security)


def _cause(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:500]


def run_agentdojo(
    llm: BasePipelineElement,
    cases: Sequence[Case],
    *,
    attack: str = DEFAULT_ATTACK,
    benchmark_version: str = BENCHMARK_VERSION,
    progress: Progress | None = None,
) -> AgentDojoRun:
    """Run ``cases`` through AgentDojo's pipeline; its checks decide each one."""
    version = require_agentdojo()
    pipeline = _pipeline(llm)
    started = datetime.now(UTC)
    results: list[CaseResult] = []
    for name, group in _by_suite(cases):
        suite = _suite(name, benchmark_version)
        loaded = _attack(attack, suite, pipeline)
        for case in group:
            result = _run_case(case, suite, pipeline, loaded)
            results.append(result)
            if progress is not None:
                progress(result)
    return AgentDojoRun(
        package_version=version,
        benchmark_version=benchmark_version,
        attack=attack,
        cases=tuple(results),
        digest=_digest(cases, version, benchmark_version, attack),
        started_at=started,
        finished_at=datetime.now(UTC),
    )


def _by_suite(cases: Sequence[Case]) -> Iterator[tuple[str, list[Case]]]:
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.suite, []).append(case)
    yield from groups.items()


def _digest(cases: Sequence[Case], version: str, benchmark_version: str, attack: str) -> str:
    """Names what ran: package and benchmark versions, attack, and every case's ids."""
    body = {
        "agentdojo": version,
        "benchmark_version": benchmark_version,
        "attack": attack,
        "cases": [[c.suite, c.user_task, c.injection_task or ""] for c in cases],
    }
    return "sha256:" + hashlib.sha256(canonical_dumps(body)).hexdigest()


def agentdojo_result(
    run: AgentDojoRun, *, run_id: str, target: str, model: str | None
) -> EvalResult:
    """The run as an ``EvalResult``: targeted ASR as the attack's family, utility beside it."""
    figures = agentic_figures(
        run.cases,
        package_version=run.package_version,
        benchmark_version=run.benchmark_version,
        attack=run.attack,
    )
    pooled = figures.suites[-1]
    suites = sorted({c.suite for c in run.cases})
    return EvalResult(
        run_id=run_id,
        epoch=0,
        suite=SuiteRef(
            id="agentdojo-" + (suites[0] if len(suites) == 1 else "all"),
            version=run.benchmark_version.removeprefix("v"),
            digest=run.digest,
        ),
        target=target,
        model=model,
        judge=JudgeInfo(id=CHECKS_JUDGE, version=run.package_version),
        attempts=1,
        samples=len(run.cases),
        families=(
            _family(run.attack, pooled.targeted_asr),
            _family(OVERALL, pooled.targeted_asr),
        ),
        over_refusal=OverRefusal(
            refusals=0, valid=0, errors=0, undetermined=0, rate=None, wilson=(0.0, 1.0)
        ),
        started_at=run.started_at,
        finished_at=run.finished_at,
        source="agentdojo",
        agentic=figures,
    )


def _family(name: str, asr: AgenticRate) -> FamilyFigures:
    return FamilyFigures(
        family=name,
        successes=asr.count,
        partial=0,
        valid=asr.valid,
        errors=asr.errors,
        undetermined=0,
        attempts_per_behaviour=1,
        behaviours=asr.valid + asr.errors,
        asr=asr.rate,
        wilson=asr.wilson,
        baseline_asr=None,
    )
