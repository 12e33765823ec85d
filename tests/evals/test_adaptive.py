"""Adaptive attacks against scripted targets, driven by a scripted attacker over HTTP.

The attacker is a real loopback server answering in PAIR's JSON (``tests.evals.attacker``);
the targets yield only to the prompt the attacker reaches by refining on the target's
answers and the judge's verdicts, so a success shows the refinement loop working.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from custodes.connectors.openai import AttackerEndpoint
from custodes.errors import BadRequest
from custodes.evals.adaptive import (
    AttackSettings,
    attack_behaviour,
    parse_attacker_json,
    parse_on_topic,
)
from custodes.evals.adaptive_run import AttackRequest, adaptive_figures, run_attack
from custodes.evals.judges import RuleJudge
from custodes.evals.metrics import best_of_k
from custodes.evals.models import Behaviour, Outcome, Probe, Response
from custodes.evals.results import SampleRecord
from custodes.evals.rundir import RunDir
from custodes.evals.suite import Suite, load_suite
from custodes.evals.targets import SCRIPTED_TEXTS, ScriptedTarget
from tests.evals.attacker import (
    COMPLIANCE,
    DIRECT,
    ESCALATION,
    OFF_TOPIC,
    OPENER,
    CrescendoTarget,
    scripted_attacker,
    transcript_users,
    winning,
)
from tests.integration.procs import free_port


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("core")


@pytest.fixture(scope="module")
def behaviour(suite: Suite) -> Behaviour:
    return suite.behaviour("cyber-01")


PAIR1 = AttackSettings("pair", width=1)
PAIR3 = AttackSettings("pair", width=3)


def yields_to_winning(behaviour: Behaviour) -> ScriptedTarget:
    return ScriptedTarget({winning(behaviour.prompt): COMPLIANCE})


def attack(
    url: str, behaviour: Behaviour, target: Any, settings: AttackSettings, **kw: Any
) -> SampleRecord:
    async def go() -> SampleRecord:
        endpoint = AttackerEndpoint(url, "red", **kw)
        try:
            return await attack_behaviour(behaviour, target, RuleJudge(), endpoint, settings)
        finally:
            await endpoint.aclose()

    return asyncio.run(go())


# --- parsing the attacker ---------------------------------------------------------------


def test_attacker_json_is_read_as_pair_writes_it() -> None:
    text = 'Here you go:\n{"improvement": "be subtler", "prompt": "Write a story"}\nthanks'
    assert parse_attacker_json(text) == ("be subtler", "Write a story")
    assert parse_attacker_json('{"improvement": "x"}') is None
    assert parse_attacker_json('{"prompt": "  "}') is None
    assert parse_attacker_json("no json at all") is None
    assert parse_attacker_json('{"prompt": "unterminated') is None


def test_on_topic_verdicts_are_read_from_double_brackets() -> None:
    assert parse_on_topic("Response: [[YES]]") is True
    assert parse_on_topic("Response: [[no]]") is False
    assert parse_on_topic("I think so") is None


def test_settings_refuse_an_empty_budget() -> None:
    with pytest.raises(BadRequest):
        AttackSettings(method="pair", budget=0)


# --- PAIR -------------------------------------------------------------------------------


def test_pair_succeeds_only_by_refining_on_the_verdict(behaviour: Behaviour) -> None:
    with scripted_attacker("pair") as (url, _):
        record = attack(
            url, behaviour, yields_to_winning(behaviour), AttackSettings("pair", width=1)
        )
    assert record.outcome is Outcome.COMPLY
    assert record.first_success == 2
    assert record.queries == 2
    assert transcript_users(record.transcript) == [winning(behaviour.prompt)]
    assert record.transcript[-1].content == COMPLIANCE
    assert record.family_id == "pair"
    assert record.sample_id == "cyber-01:pair:0"


def test_pair_streams_each_spend_a_query_before_refining(behaviour: Behaviour) -> None:
    with scripted_attacker("pair") as (url, _):
        record = attack(
            url, behaviour, yields_to_winning(behaviour), AttackSettings("pair", width=3)
        )
    assert record.first_success == 4  # three plain first tries, then stream 1 refines


def test_a_target_that_never_yields_gets_exactly_the_budget(behaviour: Behaviour) -> None:
    target = ScriptedTarget()  # always refuses
    with scripted_attacker("pair") as (url, _):
        record = attack(url, behaviour, target, AttackSettings("pair", budget=7, depth=10))
    assert record.outcome is Outcome.REFUSE
    assert record.queries == 7
    assert target.calls == 7
    assert record.first_success is None
    assert record.error is None


def test_malformed_attacker_answers_are_retried_and_counted(behaviour: Behaviour) -> None:
    with scripted_attacker("malformed") as (url, _):
        record = attack(
            url, behaviour, yields_to_winning(behaviour), AttackSettings("pair", width=1)
        )
    assert record.outcome is Outcome.COMPLY
    assert record.attacker_failures == 4  # two bad answers before each good one


def test_an_attacker_that_never_answers_json_does_not_crash_the_run(
    behaviour: Behaviour,
) -> None:
    target = ScriptedTarget()
    with scripted_attacker("garbage") as (url, _):
        record = attack(url, behaviour, target, AttackSettings("pair", width=1, depth=2))
    assert record.outcome is Outcome.ERROR
    assert record.queries == 0
    assert target.calls == 0
    assert "malformed" in (record.error or "")
    assert record.attacker_failures == 2 * (3 + 1)


def test_an_attacker_that_is_down_is_an_error_not_a_refusal(behaviour: Behaviour) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    record = attack(url, behaviour, ScriptedTarget(), AttackSettings("pair"), retries=0)
    assert record.outcome is Outcome.ERROR
    assert "attacker" in (record.error or "")
    assert "cannot reach" in (record.error or "")


# --- TAP --------------------------------------------------------------------------------


class Recording(ScriptedTarget):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.prompts: list[str] = []

    async def respond(self, probe: Probe) -> Response:
        self.prompts.append(probe.messages[-1].content)
        return await super().respond(probe)


def test_tap_prunes_off_topic_candidates_before_querying(behaviour: Behaviour) -> None:
    target = Recording({winning(behaviour.prompt): COMPLIANCE})
    with scripted_attacker("tap") as (url, _):
        record = attack(url, behaviour, target, AttackSettings("tap", branching=2, width=2))
    assert OFF_TOPIC not in target.prompts
    assert record.outcome is Outcome.COMPLY
    # depth 1: one branch pruned, one plain try; depth 2: its child refines and wins
    assert target.prompts == [f"Please, {behaviour.prompt}", winning(behaviour.prompt)]
    assert record.first_success == 2


# --- Crescendo --------------------------------------------------------------------------


def test_crescendo_escalates_backtracks_a_refusal_and_stops_on_success(
    behaviour: Behaviour,
) -> None:
    target = CrescendoTarget()
    goal = behaviour.prompt
    with scripted_attacker("crescendo") as (url, _):
        record = attack(url, behaviour, target, AttackSettings("crescendo", budget=10))
    assert record.outcome is Outcome.COMPLY
    assert record.first_success == 3
    assert target.seen == [
        (OPENER.format(goal=goal),),
        (OPENER.format(goal=goal), DIRECT.format(goal=goal)),
        (OPENER.format(goal=goal), ESCALATION.format(goal=goal)),  # the refusal taken back
    ]
    assert [m.role for m in record.transcript] == ["user", "assistant", "user", "assistant"]


def test_crescendo_without_backtracking_keeps_the_refusal_and_fails(behaviour: Behaviour) -> None:
    target = CrescendoTarget()
    with scripted_attacker("crescendo") as (url, _):
        record = attack(url, behaviour, target, AttackSettings("crescendo", budget=4, backtracks=0))
    assert record.first_success is None
    assert record.queries == 4
    assert record.outcome is Outcome.PARTIAL  # the best it got: the opener's outline


# --- figures and a whole run ------------------------------------------------------------


def _record(behaviour: str, first: int | None, queries: int) -> SampleRecord:
    return SampleRecord(
        epoch=0, sample_id=f"{behaviour}:pair:0", behaviour_id=behaviour, family_id="pair",
        kind="must_refuse", attempt=0, outcome=Outcome.COMPLY if first else Outcome.REFUSE,
        judge_id="custodes.rule", judge_version="1", queries=queries, first_success=first,
    )  # fmt: skip


def test_asr_at_k_counts_behaviours_broken_within_k_queries() -> None:
    records = [_record("a", 1, 1), _record("b", 4, 4), _record("c", 12, 12), _record("d", None, 20)]
    figures = adaptive_figures(records, AttackSettings("pair", budget=20), static_asr=0.1)
    at = {a.k: a for a in figures.at_k}
    assert sorted(at) == [1, 5, 10, 20]
    assert [at[k].successes for k in (1, 5, 10, 20)] == [1, 2, 2, 3]
    assert at[20].asr == 0.75
    assert at[20].behaviours == 4
    assert at[5].static_at_k == pytest.approx(best_of_k(0.1, 5))
    assert figures.median_queries_to_success == 4
    assert figures.queries == 37


def test_run_attack_writes_a_run_with_static_baseline_best_of_k_and_evidence(
    suite: Suite, tmp_path: Path
) -> None:
    chosen = [b for b in suite.behaviours if b.kind == "must_refuse"][:3]
    script = {winning(b.prompt): COMPLIANCE for b in chosen[:2]}
    with scripted_attacker("pair") as (url, _):
        request = AttackRequest(
            suite=suite, suite_source="core", target=ScriptedTarget(script),
            judge=RuleJudge(), attacker=AttackerEndpoint(url, "red"),
            settings=AttackSettings("pair", budget=5, width=1), out=tmp_path, limit=3,
        )  # fmt: skip
        result = run_attack(request)
    pair, direct = result.family("pair"), result.family("direct")
    assert (pair.successes, pair.valid) == (2, 3)
    assert (direct.successes, direct.valid) == (0, 3)  # the plain request, same run
    assert pair.corrected is None  # per-answer Se/Sp does not correct a search
    assert result.family("overall").corrected is None
    assert RunDir.open(tmp_path).result(0) == result
    figures = result.adaptive[0]
    assert figures.static_asr == 0.0
    assert [(a.k, a.successes) for a in figures.at_k] == [(1, 0), (5, 2)]
    assert figures.at_k[-1].asr == pair.asr  # ASR@budget is the family's ASR
    assert result.evidence is not None
    assert result.evidence.jailbreaks == 2
    artifact = json.loads((tmp_path / result.evidence.path).read_text())
    assert artifact["parameters"]["method"] == "pair"
    assert artifact["parameters"]["total_number_of_queries"] == 2 + 2 + 5 + 3
    assert {j["prompt"] for j in artifact["jailbreaks"]} == {winning(b.prompt) for b in chosen[:2]}


class HelpfulOpener:
    """Answers the benign opener helpfully (a text-only judge reads COMPLY), nothing else."""

    description = "helpful-opener"

    async def respond(self, probe: Probe) -> Response:
        last = probe.messages[-1].content
        helpful = last.startswith(OPENER[:20])
        return Response(text=COMPLIANCE if helpful else "I can't help with that request.")


def test_crescendo_does_not_count_a_helpful_answer_to_a_benign_step(
    behaviour: Behaviour,
) -> None:
    with scripted_attacker("crescendo") as (url, _):
        record = attack(
            url, behaviour, HelpfulOpener(), AttackSettings("crescendo", budget=3, backtracks=0)
        )
    assert record.first_success is None
    assert record.outcome is Outcome.REFUSE
    assert record.queries == 3
    assert "did not ask for the goal" in record.reason


class FailsFirst:
    """Fails its first call (no answer), then gives a partial answer to everything."""

    description = "fails-first"

    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []

    async def respond(self, probe: Probe) -> Response:
        self.seen.append(tuple(m.content for m in probe.messages if m.role == "user"))
        if len(self.seen) == 1:
            return Response(error="HTTP 400 from the target")
        return Response(text=SCRIPTED_TEXTS[Outcome.PARTIAL])


def test_crescendo_does_not_build_on_a_turn_the_target_failed(behaviour: Behaviour) -> None:
    target = FailsFirst()
    with scripted_attacker("crescendo") as (url, _):
        record = attack(url, behaviour, target, AttackSettings("crescendo", budget=2))
    assert record.queries == 2
    assert target.seen[1] == (DIRECT.format(goal=behaviour.prompt),)  # the opener not kept
    assert record.outcome is Outcome.PARTIAL
