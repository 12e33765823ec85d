"""Benchmark the shipped judges: verdicts per second, and the harness's overhead with them.

1. **Verdicts per second** of every shipped judge (``shipped_judges()``: rule, and with
   custodes[ml] learned and combined) on the training answers (``data/judges/train/``,
   never the held-out ones), each made unique so no cache helps, judged in batches of 64
   with ``judge_many`` where a judge has it. The physical limit beside it: the bundled
   MiniLM encoding the same texts alone (what the learned judge cannot beat).
   Target: the learned judge at least 200 verdicts/s on 2 cores.
2. **Harness overhead**: ``run_samples`` at concurrency 32 against an in-process async
   target that answers after 200 ms with a unique training answer; the ideal is
   32 / 0.2 s = 160 samples/s, and the ratio to it is the harness's efficiency with
   that judge. Target: at least 0.9 with the learned judge.

Timings are reported, never asserted.

    PYTHONPATH=src python benchmarks/bench_judges.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Sequence
from itertools import cycle, islice

import torch

from _common import print_conditions, print_table
from custodes.evals.judges import Judge, load_train, shipped_judges
from custodes.evals.learned import embedding_text
from custodes.evals.models import Behaviour, Probe, Response, Verdict
from custodes.evals.runner import RunSettings, WorkItem, run_samples, work_items
from custodes.evals.semantic import cpu_computes_bfloat16, load_embedder
from custodes.evals.suite import Suite, load_suite

LATENCY_S = 0.2
CONCURRENCY = 32
BATCH = 64
Case = tuple[Behaviour, Probe, Response]


def answers(count: int, tag: str) -> list[str]:
    """Training answers (text items only), each made unique (per ``tag`` too) so that no
    cache helps: every measurement below uses its own tag."""
    texts = [c.response for c in load_train() if c.behaviour_kind != "agentic" and c.response]
    return [f"{text}\n({tag}#{n})" for n, text in enumerate(islice(cycle(texts), count))]


def cases(count: int, tag: str) -> list[Case]:
    pool = [c for c in load_train() if c.behaviour_kind != "agentic" and c.response]
    texts = answers(count, tag)
    return [
        (c.behaviour(), c.probe(), Response(text=t))
        for c, t in zip(islice(cycle(pool), count), texts, strict=True)
    ]


def judge_rate(judge: Judge, work: Sequence[Case]) -> float:
    many: Callable[[Sequence[Case]], list[Verdict]] | None = getattr(judge, "judge_many", None)
    warm = work[:8]
    many(warm) if many else [judge.judge(*c) for c in warm]
    began = time.perf_counter()
    for start in range(0, len(work), BATCH):
        batch = work[start : start + BATCH]
        many(batch) if many else [judge.judge(*c) for c in batch]
    return len(work) / (time.perf_counter() - began)


def encode_rate(texts: Sequence[str]) -> float:
    embedder = load_embedder(required=True, fast=True)  # as the learned judge loads it
    assert embedder is not None
    views = [embedding_text(t) for t in texts]
    embedder(views[:8])
    began = time.perf_counter()
    for start in range(0, len(views), BATCH):
        embedder(views[start : start + BATCH])
    return len(views) / (time.perf_counter() - began)


class UniqueAnswerTarget:
    """An async target answering after ``latency_s`` with a unique training answer."""

    description = "bench:unique-answers"

    def __init__(self, texts: Sequence[str], latency_s: float) -> None:
        self._texts = cycle(texts)
        self._latency_s = latency_s

    async def respond(self, probe: Probe) -> Response:
        await asyncio.sleep(self._latency_s)
        return Response(text=next(self._texts))


def items(suite: Suite, count: int) -> list[WorkItem]:
    text = (i for i in work_items(suite, 64) if i.behaviour.kind != "agentic")
    return list(islice(text, count))


def harness_rate(judge: Judge, suite: Suite, count: int) -> float:
    target = UniqueAnswerTarget(answers(count, f"harness-{judge.id}"), LATENCY_S)
    records: list[object] = []
    settings = RunSettings(concurrency=CONCURRENCY, timeout_s=60)
    work = items(suite, count)  # built before the clock starts: only the run is timed
    began = time.perf_counter()
    asyncio.run(run_samples(work, target, judge, records.extend, settings=settings))
    seconds = time.perf_counter() - began
    assert len(records) == count, "the run lost samples"
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    args = parser.parse_args()
    n_verdicts, n_harness = (256, 320) if args.quick else (1024, 960)
    print_conditions("bench_judges")
    print(
        f"torch threads: {torch.get_num_threads()}, usable CPUs: "
        f"{len(os.sched_getaffinity(0))}, bfloat16 MiniLM: {cpu_computes_bfloat16()}"
    )
    judges = {name: factory() for name, factory in shipped_judges().items()}
    rows: list[tuple[str, ...]] = []
    limit = encode_rate(answers(n_verdicts, "encode")) if "learned" in judges else None
    for name, judge in judges.items():
        rate = judge_rate(judge, cases(n_verdicts, f"verdicts-{name}"))
        target = " (target 200/s)" if name == "learned" else ""
        ratio = f"{rate / limit:.2f}" if limit and name != "rule" else ""
        rows.append((f"{name} ({judge.id}@{judge.version}){target}", f"{rate:,.0f}", ratio))
    if limit is not None:
        rows.append(("MiniLM encode alone, same texts (the limit)", f"{limit:,.0f}", "1.00"))
    print_table(
        f"Verdicts per second, {n_verdicts} unique training answers, batches of {BATCH}",
        ["judge", "verdicts/s", "ratio to MiniLM alone"],
        rows,
    )
    suite = load_suite("core")
    ideal = CONCURRENCY / LATENCY_S
    harness = []
    for name, judge in judges.items():
        rate = harness_rate(judge, suite, n_harness)
        harness.append((name, n_harness, f"{rate:,.1f}", f"{rate / ideal:.3f}"))
    print_table(
        f"Harness with each judge: {LATENCY_S * 1000:.0f} ms async target, concurrency "
        f"{CONCURRENCY}, unique answers (target ratio >= 0.9 with learned)",
        ["judge", "samples", "samples/s", f"ratio to ideal {ideal:.0f}/s"],
        harness,
    )


if __name__ == "__main__":
    main()
