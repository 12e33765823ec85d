"""The runner: concurrency, timeouts, retries, errors never safe, resuming, whole-pipeline ASR.

Targets are ScriptedTarget or small fakes defined here; no network.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome, Probe, Response
from custodes.evals.results import SampleRecord, judge_info
from custodes.evals.rundir import RunDir, done_samples, latest
from custodes.evals.runner import (
    RunRequest,
    RunSettings,
    WorkItem,
    call_target,
    run_eval,
    run_samples,
    work_items,
)
from custodes.evals.suite import Suite, load_suite
from custodes.evals.targets import ScriptedTarget, TargetError

FAST = RunSettings(concurrency=8, timeout_s=5, retries=3, backoff_s=0.001, backoff_max_s=0.002)


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("core")


def collect(
    items: Sequence[WorkItem], target: object, settings: RunSettings = FAST
) -> list[SampleRecord]:
    records: list[SampleRecord] = []
    asyncio.run(
        run_samples(items, target, RuleJudge(), records.extend, settings=settings)  # type: ignore[arg-type]
    )
    return records


class Gauge:
    """A target that counts how many calls are in flight at once."""

    description = "gauge"

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.now = 0
        self.peak = 0

    async def respond(self, probe: Probe) -> Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(self.latency_s)
        self.now -= 1
        return Response(text="I can't help with that.")


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_concurrency_is_the_number_of_calls_in_flight(suite: Suite, concurrency: int) -> None:
    gauge = Gauge(0.005)
    items = list(work_items(suite, 1))[:64]
    records = collect(items, gauge, RunSettings(concurrency=concurrency))
    assert len(records) == 64
    assert gauge.peak == concurrency


class Flaky:
    """Fails ``failures`` times per probe (retryable), then answers."""

    description = "flaky"

    def __init__(self, failures: int, *, retryable: bool = True) -> None:
        self.failures = failures
        self.retryable = retryable
        self.calls: Counter[str] = Counter()

    async def respond(self, probe: Probe) -> Response:
        key = f"{probe.behaviour_id}:{probe.family_id}"
        self.calls[key] += 1
        if self.calls[key] <= self.failures:
            raise TargetError("HTTP 503", retryable=self.retryable)
        return Response(text="Sure! Here is exactly what you asked for.")


def test_a_target_failing_twice_then_answering_is_judged_on_its_answer(suite: Suite) -> None:
    probe = next(suite.probes())
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = RunSettings(retries=3, backoff_s=0.5, backoff_max_s=8)
    response, tries = asyncio.run(call_target(Flaky(2), probe, settings, sleep))
    assert (response.error, tries) == (None, 3)
    assert waits == [0.5, 1.0]  # exponential backoff between the tries


def test_backoff_is_capped() -> None:
    settings = RunSettings(backoff_s=1, backoff_max_s=5)
    assert [settings.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_retries_run_out_into_an_error_not_a_refusal(suite: Suite) -> None:
    items = list(work_items(suite, 1))[:10]
    records = collect(items, Flaky(10), RunSettings(retries=2, backoff_s=0.001))
    assert {r.outcome for r in records} == {Outcome.ERROR}
    assert all(r.tries == 3 and "gave up after 3 tries" in (r.error or "") for r in records)


def test_a_non_retryable_failure_is_tried_once(suite: Suite) -> None:
    records = collect(list(work_items(suite, 1))[:5], Flaky(10, retryable=False))
    assert [r.tries for r in records] == [1] * 5
    assert {r.outcome for r in records} == {Outcome.ERROR}


class Slow:
    description = "slow"

    async def respond(self, probe: Probe) -> Response:
        await asyncio.sleep(10)
        return Response(text="too late")


def test_a_timeout_is_retried_then_recorded_as_an_error(suite: Suite) -> None:
    settings = RunSettings(concurrency=4, timeout_s=0.05, retries=1, backoff_s=0.001)
    records = collect(list(work_items(suite, 1))[:4], Slow(), settings)
    assert {r.outcome for r in records} == {Outcome.ERROR}
    assert all("no answer within 0.05 s" in (r.error or "") and r.tries == 2 for r in records)


def test_a_target_that_always_errors_has_no_asr_and_counts_every_error(
    suite: Suite, tmp_path: Path
) -> None:
    target = ScriptedTarget(default={"ERROR": 1.0})
    result = run_eval(RunRequest(suite, "core", target, RuleJudge(), tmp_path / "run"))
    overall = result.family("overall")
    assert overall.asr is None
    assert overall.valid == 0
    assert overall.errors == sum(1 for p in suite.probes() if p.family_id != "direct")
    assert result.family("direct").errors == 64  # the harmful half; benign ones separately
    assert result.over_refusal.errors == 32
    assert result.over_refusal.rate is None


def test_errors_leave_the_denominator_not_the_numerator(suite: Suite, tmp_path: Path) -> None:
    # base64: half the attempts fail, all the others comply -> ASR 100%, not 50%
    target = ScriptedTarget({"base64": {"ERROR": 0.5, "COMPLY": 0.5}}, seed=3)
    result = run_eval(RunRequest(suite, "core", target, RuleJudge(), tmp_path / "r", attempts=4))
    base64 = result.family("base64")
    assert base64.asr == 1.0
    assert base64.valid + base64.errors == 64 * 4
    assert base64.errors > 0


# --- resuming --------------------------------------------------------------------------------


def test_a_resumed_run_skips_finished_samples_and_ignores_a_torn_line(
    suite: Suite, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    target = ScriptedTarget(default={"COMPLY": 0.2})
    items = list(work_items(suite, 2))
    run = RunDir.create_or_resume(
        out, suite, suite_source="core", judge=judge_info(RuleJudge()), attempts=2
    )
    run.begin_epoch(0, target=target.description, model=None, agent_id=None)
    asyncio.run(run_samples(items[:300], target, RuleJudge(), run.samples.append, settings=FAST))
    with run.samples.path.open("ab") as handle:  # a kill in the middle of a write
        handle.write(b'{"v":1,"epoch":0,"sample_id":"cyber-0')
    before = run.samples.path.read_bytes()

    calls_before = target.calls
    result = run_eval(RunRequest(suite, "core", target, RuleJudge(), out, attempts=2))
    records = RunDir.open(out).records()
    assert len(records) == len(items) == result.samples
    assert len({r.sample_id for r in records}) == len(items)
    assert target.calls - calls_before == len(items) - 300  # nothing redone
    assert run.samples.path.read_bytes().startswith(before[: before.rfind(b"\n") + 1])


def test_retry_errors_resends_only_the_errored_samples_and_the_retry_supersedes(
    suite: Suite, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    broken = ScriptedTarget({"base64": {"ERROR": 1.0}}, default={"COMPLY": 0.2}, seed=1)
    first = run_eval(RunRequest(suite, "core", broken, RuleJudge(), out))
    errored = first.family("base64").errors
    assert errored > 0
    before = (out / "samples.jsonl").read_bytes()

    healed = ScriptedTarget(default={"COMPLY": 0.2}, seed=1)
    resumed = run_eval(RunRequest(suite, "core", healed, RuleJudge(), out))
    assert healed.calls == 0  # a plain resume leaves errors as they are
    assert resumed.family("base64").errors == errored

    retried = run_eval(RunRequest(suite, "core", healed, RuleJudge(), out, retry_errors=True))
    assert healed.calls == errored  # only the errored samples went out again
    assert retried.family("base64").errors == 0
    assert retried.family("base64").valid == errored
    assert retried.samples == first.samples
    assert retried.run_id == first.run_id
    after = (out / "samples.jsonl").read_bytes()
    assert after.startswith(before)  # append-only: the old lines stay
    assert len(after.splitlines()) == first.samples + errored
    records = RunDir.open(out).records(0)
    assert len({r.sample_id for r in records}) == len(records) == first.samples
    assert not any(r.error for r in records)


def _sample(n: int, outcome: Outcome, error: str | None = None, epoch: int = 0) -> SampleRecord:
    return SampleRecord(
        epoch=epoch,
        sample_id=f"s{n}",
        behaviour_id="b",
        family_id="direct",
        kind="must_refuse",
        attempt=0,
        error=error,
        outcome=outcome,
        judge_id="custodes.rule",
        judge_version="1",
    )


def test_the_latest_record_of_a_sample_decides_whether_it_is_retried() -> None:
    records = [
        _sample(1, Outcome.ERROR, "HTTP 503"),  # a target error
        _sample(2, Outcome.ERROR),  # undetermined
        _sample(3, Outcome.REFUSE),
        _sample(4, Outcome.ERROR, "HTTP 503"),
        _sample(4, Outcome.COMPLY),  # retried, and answered
        _sample(5, Outcome.COMPLY),
        _sample(5, Outcome.ERROR, "HTTP 503"),  # retried, and failed again
        _sample(6, Outcome.ERROR, "HTTP 503", epoch=1),  # another epoch
    ]
    assert done_samples(records, 0) == {"s1", "s2", "s3", "s4", "s5"}
    assert done_samples(records, 0, retry_errors=True) == {"s3", "s4"}
    assert [(r.sample_id, r.outcome) for r in latest(records) if r.epoch == 0] == [
        ("s1", Outcome.ERROR),
        ("s2", Outcome.ERROR),
        ("s3", Outcome.REFUSE),
        ("s4", Outcome.COMPLY),
        ("s5", Outcome.ERROR),
    ]


def test_a_run_directory_refuses_another_configuration(suite: Suite, tmp_path: Path) -> None:
    out = tmp_path / "run"
    target = ScriptedTarget()
    run_eval(RunRequest(suite, "core", target, RuleJudge(), out, attempts=1))
    with pytest.raises(Exception, match="attempts 1, not 2"):
        run_eval(RunRequest(suite, "core", target, RuleJudge(), out, attempts=2))


# --- the whole pipeline recovers known rates -------------------------------------------------

# Per family: outcome probabilities of the synthetic target, and the ASR they imply
# (successes over valid attempts; PARTIAL is valid but not a success; ERROR is left out).
RATES = {
    "direct": {"COMPLY": 0.05},
    "base64": {"COMPLY": 0.6, "PARTIAL": 0.1},
    "leetspeak": {"COMPLY": 0.15},
    "rot13": {"COMPLY": 0.3, "ERROR": 0.2},
    "translation": {"COMPLY": 0.1, "PARTIAL": 0.3},
    "roleplay": {"COMPLY": 0.45},
    "multi-turn": {"COMPLY": 0.25, "ERROR": 0.1},
    "indirect-injection": {"UNSAFE_ACTION": 0.4},
}


def expected_asr(rates: dict[str, float]) -> float:
    valid = 1.0 - rates.get("ERROR", 0.0)
    return (rates.get("COMPLY", 0.0) + rates.get("UNSAFE_ACTION", 0.0)) / valid


def test_known_rates_are_recovered_within_wilson_intervals(suite: Suite, tmp_path: Path) -> None:
    covered, total = 0, 0
    for seed in range(4):
        target = ScriptedTarget(RATES, default={"COMPLY": 0.2}, seed=seed)
        out = tmp_path / f"seed{seed}"
        result = run_eval(RunRequest(suite, "core", target, RuleJudge(), out, attempts=5))
        for family in result.families[:-1]:
            truth = expected_asr(RATES.get(family.family, {"COMPLY": 0.2}))
            total += 1
            covered += family.wilson[0] <= truth <= family.wilson[1]
            assert family.asr is not None
            assert abs(family.asr - truth) < 0.12
        assert result.over_refusal.rate is not None
        # benign controls go through 'direct': REFUSE 0.95 there is over-refusal
        assert abs(result.over_refusal.rate - 0.95) < 0.06
    assert covered / total >= 0.88  # 95% intervals: about 95% of them hold the truth
