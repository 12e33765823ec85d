"""Benchmark harness overhead: how fast Custodes runs, judges and records samples.

1. **Harness against an instant target** (``ScriptedTarget``, no latency): a
   10,000-sample run of the core suite with the rule judge, through the whole pipeline
   (runner, judge, fsynced samples.jsonl, summary). Reports samples judged per second
   (target: at least 500/s) and the rule judge alone, for comparison.
2. **Memory** of that run: the tracemalloc peak of Python allocations (a separate run,
   since tracing slows it) and the process's peak RSS (ru_maxrss) before and after.
3. **Latency-bound throughput**: a target answering after 200 ms, at concurrency 32;
   the ideal is 32 / 0.2 s = 160 samples/s, and the ratio to it is the harness's
   efficiency. Measured in-process (ScriptedTarget) and over HTTP on loopback (the weak
   model served with 200 ms latency, through the OpenAI-compatible connector).

Timings are reported, never asserted.

    .venv/bin/python benchmarks/bench_evals.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from _common import print_conditions, print_table
from custodes.connectors.openai import OpenAIChatTarget
from custodes.demo.weak_model import serve
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome, Response
from custodes.evals.results import judge_info, summarise
from custodes.evals.rundir import RunDir
from custodes.evals.runner import RunSettings, WorkItem, run_samples, work_items
from custodes.evals.suite import Suite, load_suite
from custodes.evals.targets import SCRIPTED_TEXTS, ScriptedTarget, Target

SCRIPT = {"base64": {"COMPLY": 0.5}, "indirect-injection": {"UNSAFE_ACTION": 0.3}}
LATENCY_S = 0.2
CONCURRENCY = 32


def items(suite: Suite, count: int) -> list[WorkItem]:
    attempts = -(-count // sum(1 for _ in suite.probes()))
    return list(islice(work_items(suite, attempts), count))


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def harness_run(suite: Suite, work: list[WorkItem], target: Target, concurrency: int) -> float:
    """Seconds for a whole run: samples to disk (fsynced batches), then the summary."""
    with tempfile.TemporaryDirectory(prefix="bench-evals-") as tmp:
        run = RunDir.create_or_resume(
            tmp, suite, suite_source="core", judge=judge_info(RuleJudge()), attempts=1
        )
        began = time.perf_counter()
        settings = RunSettings(concurrency=concurrency, timeout_s=60)
        asyncio.run(run_samples(work, target, RuleJudge(), run.samples.append, settings=settings))
        records = run.records()
        now = datetime.now(UTC)
        summarise(
            records, suite, run_id="bench", epoch=0, target="bench", model=None, agent_id=None,
            judge=run.manifest.judge, attempts=1, started_at=now, finished_at=now,
        )  # fmt: skip
        elapsed = time.perf_counter() - began
    assert len(records) == len(work), "the run lost samples"
    return elapsed


def judge_only(suite: Suite, work: list[WorkItem]) -> float:
    """Rule-judge verdicts per second on the run's probes (no target, no disk)."""
    judge = RuleJudge()
    answers = [Response(text=SCRIPTED_TEXTS[o]) for o in (Outcome.REFUSE, Outcome.COMPLY)]
    began = time.perf_counter()
    for n, item in enumerate(work):
        judge.judge(item.behaviour, item.probe, answers[n % 2])
    return len(work) / (time.perf_counter() - began)


def overhead(suite: Suite, count: int) -> None:
    work = items(suite, count)
    rss_before = maxrss_mib()
    seconds = harness_run(suite, work, ScriptedTarget(SCRIPT, default={"COMPLY": 0.1}), 8)
    rss_after = maxrss_mib()
    tracemalloc.start()
    harness_run(suite, work, ScriptedTarget(SCRIPT, default={"COMPLY": 0.1}), 8)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rate = count / seconds
    verdict = "meets" if rate >= 500 else "BELOW"
    print_table(
        f"Harness overhead: {count:,} samples, instant scripted target, rule judge",
        ["measure", "value"],
        [
            ("whole run (runner + judge + fsynced log + summary)", f"{seconds:.2f} s"),
            ("samples judged per second", f"{rate:,.0f}/s ({verdict} the 500/s target)"),
            ("rule judge alone", f"{judge_only(suite, work):,.0f} verdicts/s"),
            ("tracemalloc peak (Python allocations, 2nd run)", f"{peak / 2**20:.1f} MiB"),
            ("ru_maxrss before -> after the run", f"{rss_before:.0f} -> {rss_after:.0f} MiB"),
        ],
    )


@contextmanager
def weak_model_url(latency_s: float) -> Iterator[str]:
    server = serve(0, latency_s=latency_s)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def latency_bound(suite: Suite, count: int) -> None:
    ideal = CONCURRENCY / LATENCY_S
    work = items(suite, count)
    rows = []
    scripted = ScriptedTarget(SCRIPT, latency_s=LATENCY_S)
    seconds = harness_run(suite, work, scripted, CONCURRENCY)
    rows.append(("in-process (ScriptedTarget)", count, seconds, count / seconds))
    with weak_model_url(LATENCY_S) as url:
        seconds = harness_run(suite, work, OpenAIChatTarget(url, "weak"), CONCURRENCY)
    rows.append(("HTTP loopback (OpenAI connector, weak model)", count, seconds, count / seconds))
    print_table(
        f"Latency-bound throughput: {LATENCY_S * 1000:.0f} ms target, concurrency {CONCURRENCY}",
        ["target", "samples", "wall", "samples/s", f"ratio to ideal {ideal:.0f}/s"],
        [(n, c, f"{s:.2f} s", f"{r:,.1f}", f"{r / ideal:.3f}") for n, c, s, r in rows],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI)")
    quick = parser.parse_args().quick
    print_conditions("bench_evals")
    suite = load_suite("core")
    overhead(suite, 2_000 if quick else 10_000)
    latency_bound(suite, 320 if quick else 1_600)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
