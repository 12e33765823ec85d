"""The runner: sends a suite's samples to a target, judges each answer, records it.

- **Concurrency**: ``RunSettings.concurrency`` workers (default 8) on one asyncio loop
  pull samples from a lazy iterator, so memory does not grow with the suite; a
  synchronous target runs in a thread pool of the same size.
- **Timeouts and retries**: each call has ``timeout_s``; a timeout or a retryable
  ``TargetError`` (HTTP 429, 5xx, transport errors) is retried up to ``retries`` more
  times with exponential backoff (``backoff_s`` · 2ⁿ, at most ``backoff_max_s``). A
  failure that outlasts them, or one that is not retryable, becomes
  ``Response(error=...)``: the judges rule it ``ERROR``, never a refusal.
- **Durability**: judged samples go to one writer task that appends whatever has
  accumulated as one fsynced batch (``rundir.SampleLog``), so throughput does not pay
  one fsync per sample and a killed run resumes where its file ends.

``run_eval`` is the whole of ``custodes eval run``: open or resume the run directory,
skip what is finished (with ``retry_errors``, what finished without an error), run the
rest, close the epoch and summarise it. A retried sample's new record supersedes the
old one (``rundir``: the last line per sample wins), so the summary counts the retry.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from custodes.errors import BadRequest
from custodes.evals.batching import JudgeBatcher, batch_judge
from custodes.evals.calibration import apply_audit
from custodes.evals.evidence import write_evidence
from custodes.evals.judges import AgenticJudge, Judge, RuleJudge
from custodes.evals.models import Behaviour, Probe, Response, Verdict
from custodes.evals.results import (
    AdaptiveFigures,
    DriftSummary,
    Embedder,
    EvalResult,
    SampleRecord,
    drift_summary,
    epoch_drift,
    judge_info,
    summarise,
)
from custodes.evals.rundir import RunDir, done_samples
from custodes.evals.semantic import load_embedder
from custodes.evals.suite import Suite
from custodes.evals.targets import Target, TargetError

__all__ = [
    "Progress",
    "RunRequest",
    "RunSettings",
    "WorkItem",
    "call_target",
    "judge_sample",
    "run_eval",
    "run_samples",
    "summarise_epoch",
    "work_items",
]

Progress = Callable[[int, int], None]  # (samples finished so far, samples in this run)
Sink = Callable[[Sequence[SampleRecord]], None]


@dataclass(frozen=True)
class RunSettings:
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.retries < 0 or self.timeout_s <= 0:
            raise BadRequest(
                "need concurrency >= 1, retries >= 0 and a positive timeout", code="bad_settings"
            )

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed try (1, 2, ...)."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** (failures - 1)))


@dataclass(frozen=True)
class WorkItem:
    sample_id: str
    probe: Probe
    behaviour: Behaviour
    attempt: int


def work_items(suite: Suite, attempts: int, skip: set[str] | None = None) -> Iterator[WorkItem]:
    """The suite's samples not in ``skip``, lazily, in suite order."""
    skip = skip or set()
    for sample_id, probe in suite.samples(attempts):
        if sample_id not in skip:
            attempt = int(sample_id.rsplit(":", 1)[1])
            yield WorkItem(sample_id, probe, suite.behaviour(probe.behaviour_id), attempt)


# --- one call ----------------------------------------------------------------------------

Sleep = Callable[[float], Awaitable[None]]


async def _try_once(target: Target, probe: Probe, timeout_s: float) -> Response:
    began = time.perf_counter()
    try:
        response = await asyncio.wait_for(target.respond(probe), timeout_s)
    except TimeoutError:
        raise TargetError(f"no answer within {timeout_s:g} s", retryable=True) from None
    latency = time.perf_counter() - began
    return response.model_copy(update={"latency_s": latency})


async def call_target(
    target: Target, probe: Probe, settings: RunSettings, sleep: Sleep = asyncio.sleep
) -> tuple[Response, int]:
    """The target's answer and the number of tries it took; failures become errors."""
    tries = 0
    while True:
        tries += 1
        try:
            return await _try_once(target, probe, settings.timeout_s), tries
        except TargetError as exc:
            if not exc.retryable:
                return Response(error=exc.message), tries
            if tries > settings.retries:
                return Response(error=f"{exc.message} (gave up after {tries} tries)"), tries
            await sleep(settings.backoff(tries))
        except Exception as exc:  # a broken target (e.g. a callable's bug) is its error
            return Response(error=f"target raised {exc!r}"), tries


def judge_sample(
    judge: Judge, item: WorkItem, response: Response, tries: int, epoch: int
) -> SampleRecord:
    verdict = judge.judge(item.behaviour, item.probe, response)
    return _record(item, response, tries, epoch, verdict)


def _record(
    item: WorkItem, response: Response, tries: int, epoch: int, verdict: Verdict
) -> SampleRecord:
    return SampleRecord(
        epoch=epoch,
        sample_id=item.sample_id,
        behaviour_id=item.behaviour.id,
        family_id=item.probe.family_id,
        kind=item.behaviour.kind,
        attempt=item.attempt,
        text=response.text,
        tool_calls=response.tool_calls,
        error=response.error,
        latency_s=response.latency_s,
        tries=tries,
        outcome=verdict.outcome,
        judge_id=verdict.judge_id,
        judge_version=verdict.judge_version,
        reason=verdict.reason,
    )


# --- many calls --------------------------------------------------------------------------


class _Writer:
    """Group commit: one task drains finished records into the sink in batches."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._queue: asyncio.Queue[SampleRecord | None] = asyncio.Queue()

    def put(self, record: SampleRecord) -> None:
        self._queue.put_nowait(record)

    async def run(self, on_durable: Callable[[int], None]) -> None:
        closing = False
        while not closing:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            closing = batch[-1] is None
            records = [r for r in batch if r is not None]
            await asyncio.to_thread(self._sink, records)
            on_durable(len(records))

    def close(self) -> None:
        self._queue.put_nowait(None)


def _size_thread_pool(size: int) -> None:
    """Give the loop a default executor (sync targets, judges, the writer) of ``size``.

    The loop owns it from then on: ``asyncio.run`` shuts it down when the loop closes.
    """
    pool = ThreadPoolExecutor(max_workers=size + 2, thread_name_prefix="eval")
    asyncio.get_running_loop().set_default_executor(pool)


async def run_samples(
    items: Iterable[WorkItem],
    target: Target,
    judge: Judge,
    sink: Sink,
    *,
    epoch: int = 0,
    settings: RunSettings | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run every item; ``sink`` receives judged records in durable batches. Returns count."""
    settings = settings or RunSettings()
    feed = iter(items)
    batched = batch_judge(judge)
    # pure and fast: no thread hop
    inline = batched is None and isinstance(judge, RuleJudge | AgenticJudge)
    batcher = JudgeBatcher(batched) if batched is not None else None
    writer = _Writer(sink)
    finished = [0]

    def durable(count: int) -> None:
        finished[0] += count
        if progress is not None:
            progress(count)

    async def work() -> None:
        for item in feed:
            response, tries = await call_target(target, item.probe, settings)
            if inline:
                writer.put(judge_sample(judge, item, response, tries, epoch))
            elif batcher is not None:  # many answers, one model call
                verdict = await batcher.verdict(item.behaviour, item.probe, response)
                writer.put(_record(item, response, tries, epoch, verdict))
            else:
                writer.put(
                    await asyncio.to_thread(judge_sample, judge, item, response, tries, epoch)
                )

    _size_thread_pool(settings.concurrency)
    writing = asyncio.create_task(writer.run(durable))
    judging = asyncio.create_task(batcher.run()) if batcher is not None else None
    try:
        await asyncio.gather(*(work() for _ in range(settings.concurrency)))
    finally:
        if batcher is not None and judging is not None:
            batcher.close()
            await judging
        writer.close()
        await writing
        await _close(target)
    return finished[0]


async def _close(target: Target) -> None:
    """Let a target release what it opened on this loop (an HTTP client's connections)."""
    close = getattr(target, "aclose", None)
    if close is not None:
        await close()


# --- a whole run -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRequest:
    """What ``custodes eval run`` asks for."""

    suite: Suite
    suite_source: str
    target: Target
    judge: Judge
    out: Path
    attempts: int = 1
    epoch: int = 0
    model: str | None = None
    agent_id: str | None = None
    semantic: bool | None = None  # the DC's semantic term; None: when custodes[ml] is installed
    retry_errors: bool = False  # send again the samples whose record is an error


@functools.cache
def _default_embedder() -> Embedder | None:
    """The semantic term's default, as ``eval drift``'s: the embedder when installed."""
    return load_embedder()


def _embedder(semantic: bool | None) -> Embedder | None:
    if semantic is None:
        return _default_embedder()
    return load_embedder(required=True) if semantic else None


def _drift_against_first(
    run: RunDir, epoch: int, semantic: bool | None = None
) -> DriftSummary | None:
    """DC against the first finished epoch, exactly as ``eval drift RUN`` computes it:
    same defaults (semantic term when custodes[ml] is installed, seed, permutations)."""
    earlier = [e for e in run.epochs(finished=True) if e < epoch]
    if not earlier:
        return None
    base = earlier[0]
    try:
        report = epoch_drift(run.records(base), run.records(epoch), embed=_embedder(semantic))
    except BadRequest as exc:
        # Single-attempt runs, or an epoch with no non-error answer, carry no drift figure.
        if exc.code in ("too_few_attempts", "no_comparable_items"):
            return None
        raise
    return drift_summary(report, baseline_epoch=base, baseline_run_id=run.epoch(base).run_id)


def summarise_epoch(
    run: RunDir,
    epoch: int,
    suite: Suite,
    adaptive: tuple[AdaptiveFigures, ...] = (),
    *,
    semantic: bool | None = None,
) -> EvalResult:
    """Close an epoch: its ``EvalResult`` (with drift against the first epoch), saved.

    The epoch's successful samples are kept as evidence (``custodes.evals.evidence``)
    and the result carries the evidence file's sha256.
    """
    info = run.finish_epoch(epoch)
    manifest = run.manifest
    records = run.records(epoch)
    result = summarise(
        records,
        suite,
        run_id=info.run_id,
        epoch=epoch,
        target=info.target,
        model=info.model,
        agent_id=info.agent_id,
        judge=manifest.judge,
        attempts=manifest.attempts,
        started_at=info.started_at,
        finished_at=info.finished_at or info.started_at,
        drift=_drift_against_first(run, epoch, semantic),
        source=manifest.source,
    ).model_copy(update={"adaptive": adaptive})
    result = apply_audit(run, result, suite)  # Se/Sp measured on this run, once labelled
    evidence = write_evidence(run.path, result, records, suite)
    result = result.model_copy(update={"evidence": evidence})
    run.write_result(result)
    return result


def run_eval(
    request: RunRequest,
    *,
    settings: RunSettings | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Run (or resume) one epoch of a suite against a target in ``request.out``."""
    run = RunDir.create_or_resume(
        request.out,
        request.suite,
        suite_source=request.suite_source,
        judge=judge_info(request.judge),
        attempts=request.attempts,
    )
    run.begin_epoch(
        request.epoch,
        target=request.target.description,
        model=request.model,
        agent_id=request.agent_id,
    )
    done = done_samples(run.records(), request.epoch, retry_errors=request.retry_errors)
    total = sum(1 for _ in request.suite.samples(request.attempts))
    counted = [len(done)]

    def advance(count: int) -> None:
        counted[0] += count
        if progress is not None:
            progress(counted[0], total)

    advance(0)
    items = work_items(request.suite, request.attempts, done)
    asyncio.run(
        run_samples(
            items,
            request.target,
            request.judge,
            run.samples.append,
            epoch=request.epoch,
            settings=settings,
            progress=advance,
        )
    )
    return summarise_epoch(run, request.epoch, request.suite, semantic=request.semantic)
