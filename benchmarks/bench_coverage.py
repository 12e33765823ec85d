"""Coverage of the ASR intervals under clustered attempts and an imperfect judge.

How it is simulated (numpy, deterministic seeds): a run has B behaviours, each attacked
k times. Behaviour i has its own true success rate ``q_i ~ Beta(p(1−ρ)/ρ, (1−p)(1−ρ)/ρ)``
(mean p, intra-behaviour correlation ρ; ρ = 0 means every attempt is independent), and
each attempt truly succeeds with probability q_i (a beta-binomial process). The target
of every interval is the population ASR p. Reported per (B, k, ρ), over R replications:

- ``Wilson``: the plain score interval on all B·k attempts (the old interval);
- ``by behaviour``: Wilson on the design-effect-adjusted n with Korn–Graubard's
  correction (``custodes.evals.metrics.clustered_interval``, the new interval);
- ``old corrected`` / ``new corrected``: a judge with Se 0.85 and Sp 0.80 labels each
  attempt; its Se/Sp were measured on 100 positives and 100 negatives (binomial). The old
  interval (``corrected_interval``: attempts independent, Se/Sp resampled from the
  point) against the new (``corrected_clustered``: behaviours resampled, Se/Sp from
  Beta posteriors).

Then the issue's example: a true ASR of 20% judged by an over-calling judge (Se 0.95, Sp
0.60 on this target, so it reports about 51%) whose published figures were measured
in-sample (Se 95/98, Sp 91/99). The old corrected interval trusts those; the new one
either refuses (the held-out validation does not support a correction) or uses a
run-specific calibration: 80 answers of the run, drawn by verdict and labelled.

    .venv/bin/python benchmarks/bench_coverage.py [--quick] [--reps R]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from custodes.evals.calibration import draw_audit, run_quality
from custodes.evals.metrics import (
    HeldoutQuality,
    clustered_interval,
    corrected_clustered,
    corrected_interval,
    support,
    wilson_interval,
)
from custodes.evals.models import Outcome
from custodes.evals.results import SampleRecord
from custodes.evals.suite import load_suite

console = Console(width=140)
P_TRUE, SE, SP, LABELLED = 0.2, 0.85, 0.80, 100


def true_successes(rng: np.random.Generator, b: int, k: int, rho: float, p: float) -> np.ndarray:
    if rho == 0:
        return rng.binomial(k, p, b)
    return rng.binomial(k, rng.beta(p * (1 - rho) / rho, (1 - p) * (1 - rho) / rho, b))


def judged(rng: np.random.Generator, truth: np.ndarray, k: int, se: float, sp: float) -> np.ndarray:
    return rng.binomial(truth, se) + rng.binomial(k - truth, 1 - sp)


def cell(b: int, k: int, rho: float, reps: int, seed: int) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    hits = np.zeros(4)
    for _ in range(reps):
        truth = true_successes(rng, b, k, rho, P_TRUE)
        lo, hi = wilson_interval(int(truth.sum()), b * k)
        c = clustered_interval([(int(s), k) for s in truth])
        seen = judged(rng, truth, k, SE, SP)
        tp, tn = int(rng.binomial(LABELLED, SE)), int(rng.binomial(LABELLED, SP))
        _, olo, ohi = corrected_interval(
            int(seen.sum()), b * k, tp / LABELLED, tn / LABELLED,
            se_n=LABELLED, sp_n=LABELLED, draws=2000,
        )  # fmt: skip
        quality = HeldoutQuality(tp, LABELLED, tn, LABELLED)
        _, nlo, nhi = corrected_clustered([(int(s), k, 0, 0) for s in seen], quality, draws=1000)
        hits += [lo <= P_TRUE <= hi, c.lower <= P_TRUE <= c.upper,
                 olo <= P_TRUE <= ohi, nlo <= P_TRUE <= nhi]  # fmt: skip
    return tuple(hits / reps)


def coverage_table(grid: Sequence[tuple[int, int, float]], reps: int) -> None:
    table = Table(title=f"95% interval coverage of the true ASR {P_TRUE:.0%} ({reps} runs per row)")
    for name in ("behaviours", "attempts", "ρ", "Wilson", "by behaviour",
                 "old corrected", "new corrected"):  # fmt: skip
        table.add_column(name, justify="right")
    for n, (b, k, rho) in enumerate(grid):
        covered = cell(b, k, rho, reps, seed=1000 + n)
        table.add_row(str(b), str(k), f"{rho:g}", *(f"{c:.3f}" for c in covered))
    console.print(table)
    tolerance = 1.96 * np.sqrt(0.95 * 0.05 / reps)
    console.print(f"a coverage within 0.95 ± {tolerance:.3f} is consistent with 95% at {reps} runs")


# --- the example ------------------------------------------------------------------


def records_of(seen_attempts: list[list[bool]]) -> list[SampleRecord]:
    """The run's sample records: behaviour i, attempt a, as the judge saw it."""
    return [
        SampleRecord(
            epoch=0, sample_id=f"b{i}:base64:{a}", behaviour_id=f"b{i}", family_id="base64",
            kind="must_refuse", attempt=a, outcome=Outcome.COMPLY if verdict else Outcome.REFUSE,
            judge_id="j", judge_version="1",
        )
        for i, row in enumerate(seen_attempts)
        for a, verdict in enumerate(row)
    ]  # fmt: skip


def _shown(interval: tuple[float, float] | None, why: str | None) -> str:
    if interval is None:
        return f"not shown: {why}"
    return f"[{interval[0]:.1%}, {interval[1]:.1%}]"


def example(reps: int) -> None:
    """The issue's run: true ASR 20%, judged about 51%, "corrected" with in-sample Se/Sp."""
    b, k, rho, se, sp = 64, 5, 0.3, 0.95, 0.60
    in_sample = (95, 98, 91, 99)  # the published, in-sample Se/Sp (TP, n_pos, TN, n_neg)
    heldout = HeldoutQuality(27, 30, 19, 30)  # validated blind: Sp far below in-sample
    suite = load_suite("core")
    rng = np.random.default_rng(42)
    rows: dict[str, list[tuple[float, float] | None]] = {"old": [], "heldout": [], "run": []}
    notes: dict[str, str | None] = {"old": None, "heldout": support(heldout), "run": None}
    judged_rates = []
    for rep in range(reps):
        truth = true_successes(rng, b, k, rho, P_TRUE)
        true_attempts = [[a < t for a in range(k)] for t in truth]
        seen_attempts = [[rng.random() < (se if x else 1 - sp) for x in r] for r in true_attempts]
        clusters = [(sum(r), k, 0, 0) for r in seen_attempts]
        n, s = b * k, sum(c[0] for c in clusters)
        judged_rates.append(s / n)
        _, lo, hi = corrected_interval(
            s, n, in_sample[0] / in_sample[1], in_sample[2] / in_sample[3],
            se_n=in_sample[1], sp_n=in_sample[3], draws=2000,
        )  # fmt: skip
        rows["old"].append((lo, hi))
        _, lo, hi = corrected_clustered(clusters, heldout, draws=2000, seed=rep)
        rows["heldout"].append((lo, hi) if notes["heldout"] is None else None)
        records = records_of(seen_attempts)
        truth_of = {f"b{i}:base64:{a}": true_attempts[i][a] for i in range(b) for a in range(k)}
        lines = draw_audit(records, suite, attempts=1, size=80, seed=rep)
        labels = {x.sample_id: "COMPLY" if truth_of[x.sample_id] else "REFUSE" for x in lines}
        quality = run_quality(records, labels)
        why = support(quality)
        if rep == 0:
            notes["run"] = why
        if why is None:
            _, lo, hi = corrected_clustered(clusters, quality, draws=2000, seed=rep)
        rows["run"].append((lo, hi) if why is None else None)
    title = (
        f"The issue's example: true ASR 20%, an over-calling judge (Se 0.95, Sp 0.60), "
        f"{b} behaviours × {k} attempts, ρ {rho}; mean judged ASR {np.mean(judged_rates):.1%}"
    )
    table = Table(title=title)
    for name in ("corrected interval", "first run", f"covers 20% (of {reps})", "shown in",
                 "mean width"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("corrected interval",) else "right")
    labels_of = {
        "old": "old: in-sample Se 95/98, Sp 91/99, attempts independent",
        "heldout": "new: held-out Se 27/30, Sp 19/30 (Beta), by behaviour",
        "run": "new: run calibration, 80 labels by verdict (IPW), by behaviour",
    }
    for key, intervals in rows.items():
        shown = [i for i in intervals if i is not None]
        covered = sum(lo <= P_TRUE <= hi for lo, hi in shown)
        width = np.mean([hi - lo for lo, hi in shown]) if shown else float("nan")
        table.add_row(
            labels_of[key], _shown(intervals[0], notes[key]),
            f"{covered}/{len(shown)}", f"{len(shown)}/{reps}", f"{width:.1%}",
        )  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs per row")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args()
    reps = args.reps or (100 if args.quick else 400)
    started = time.perf_counter()
    grid = [(b, k, rho) for b in (10, 40, 64) for k in (1, 5, 20) for rho in (0.0, 0.2, 0.5)]
    if args.quick:
        grid = [(b, k, rho) for b in (10, 64) for k in (1, 5) for rho in (0.0, 0.5)]
    coverage_table(grid, reps)
    example(max(20, reps // 4))
    console.print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
