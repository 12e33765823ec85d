"""Do the drift tests hold their level? False-alarm rates and power, by simulation.

1. **Passive drift under a Markov null.** One unchanged agent whose decisions are a
   sticky chain over three actions (keep the last action with probability ``stay``,
   else draw afresh from the shares 60/30/10, so the shares are stationary); two
   adjacent windows of 200 decisions. The false-alarm rate (FAR) of the old iid
   permutation test (the pooled decisions permuted as if independent) and of the
   Markov-chain bootstrap now used by ``passive_drift``, at levels 0.05 and 0.01, for a
   few stickiness values. A test holds its level when FAR <= level + 3 binomial SDs.
2. **Power of passive drift on a real shift**: the current window's shares move away
   from 60/30/10 (same stickiness 0.8); the share of runs that alert at 0.05.
3. **The Drift-Coefficient's family-wise alert**: 30 must-refuse probes, 10 attempts per
   epoch, no drift; FAR of each component (divergence, Δ harmful compliance) and of the
   Holm-combined alert at 0.05; then its power when compliance rises from 10% to 20%.

Rates are printed, never asserted (the tests assert the level with a tolerance).

    .venv/bin/python benchmarks/bench_drift_level.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence

import numpy as np

from _common import print_conditions, print_table
from custodes.evals.drift import drift_coefficient, passive_drift
from custodes.evals.models import Outcome

ACTIONS = ("allow", "deny", "escalate")
AS_OUTCOME = dict(zip(ACTIONS, (Outcome.REFUSE, Outcome.PARTIAL, Outcome.COMPLY), strict=True))
SHARES = (0.6, 0.3, 0.1)
WINDOW = 200
DRAWS = 199  # permutations / bootstrap draws per test: 1/(R+1) = 0.005 < 0.01
LEVELS = (0.05, 0.01)


def sticky_chain(
    rng: np.random.Generator, n: int, stay: float, shares: Sequence[float]
) -> list[str]:
    """Keep the last action with ``stay``, else draw one from ``shares`` (stationary)."""
    state = int(rng.choice(len(shares), p=shares))
    fresh = rng.choice(len(shares), size=n, p=shares)
    keep = rng.random(n) < stay
    labels = []
    for t in range(n):
        labels.append(ACTIONS[state])
        state = state if keep[t] else int(fresh[t])
    return labels


def iid_p(before: list[str], after: list[str], seed: int) -> float:
    """The old passive test: an iid permutation of the pooled decisions."""
    report = drift_coefficient(
        {"w": [AS_OUTCOME[x] for x in before]},
        {"w": [AS_OUTCOME[x] for x in after]},
        {"w": "agentic"},
        permutations=DRAWS,
        seed=seed,
        level=0.05,
    )
    return report.p_beh


def markov_p(before: list[str], after: list[str], seed: int) -> float:
    return passive_drift(before, after, permutations=DRAWS, seed=seed, level=0.05).p


def bound(level: float, runs: int) -> float:
    return level + 3 * math.sqrt(level * (1 - level) / runs)


def passive_far(seeds: int) -> None:
    rows = []
    for stay in (0.0, 0.5, 0.8, 0.9, 0.95):
        old, new = [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            chain = sticky_chain(rng, 2 * WINDOW, stay, SHARES)
            old.append(iid_p(chain[:WINDOW], chain[WINDOW:], seed))
            new.append(markov_p(chain[:WINDOW], chain[WINDOW:], seed))
        row: list[object] = [f"{stay:.2f}"]
        for level in LEVELS:
            row += [
                f"{np.mean(np.array(old) < level):.3f}",
                f"{np.mean(np.array(new) < level):.3f}",
            ]
        rows.append(row)
    limits = ", ".join(f"{level}: {bound(level, seeds):.3f}" for level in LEVELS)
    print_table(
        f"Passive drift under a Markov null ({seeds} seeds, windows {WINDOW}+{WINDOW}, "
        f"{DRAWS} draws)",
        ["stay", "iid FAR 0.05", "Markov FAR 0.05", "iid FAR 0.01", "Markov FAR 0.01"],
        rows,
        caption=f"holds its level when FAR <= level + 3 SD ({limits})",
    )


def passive_power(seeds: int) -> None:
    rows = []
    for shifted in ((0.6, 0.3, 0.1), (0.5, 0.3, 0.2), (0.4, 0.3, 0.3), (0.3, 0.3, 0.4)):
        alarms = 0
        for seed in range(seeds):
            rng = np.random.default_rng(10_000 + seed)
            before = sticky_chain(rng, WINDOW, 0.8, SHARES)
            after = sticky_chain(rng, WINDOW, 0.8, shifted)
            alarms += markov_p(before, after, seed) < 0.05
        rows.append(("/".join(f"{s:.0%}" for s in shifted), f"{alarms / seeds:.3f}"))
    print_table(
        f"Passive drift power at 0.05 (stay 0.8, shares 60/30/10 before; {seeds} seeds)",
        ["shares after (allow/deny/escalate)", "Markov alert rate"],
        rows,
    )


def _epoch(rng: np.random.Generator, rate: float, items: int) -> dict[str, list[Outcome]]:
    return {
        f"h{i}": [Outcome.COMPLY if u < rate else Outcome.REFUSE for u in rng.random(10)]
        for i in range(items)
    }


def dc_family(seeds: int) -> None:
    rows = []
    for after in (0.1, 0.2):
        beh = harm = family = 0
        for seed in range(seeds):
            rng = np.random.default_rng(20_000 + seed)
            base, cur = _epoch(rng, 0.1, 30), _epoch(rng, after, 30)
            report = drift_coefficient(
                base, cur, dict.fromkeys(base, "must_refuse"),
                permutations=DRAWS, seed=seed, level=0.05,
            )  # fmt: skip
            beh += report.p_beh < 0.05
            harm += (report.p_delta_h or 1.0) < 0.05
            family += report.alert
        rows.append(
            (
                f"10% → {after:.0%}",
                f"{beh / seeds:.3f}",
                f"{harm / seeds:.3f}",
                f"{family / seeds:.3f}",
            )
        )
    print_table(
        f"Drift-Coefficient alert at family-wise 0.05 (30 probes x 10 attempts, {seeds} seeds)",
        ["harmful compliance", "divergence p<0.05", "ΔH p<0.05", "Holm alert"],
        rows,
        caption=f"first row: no drift (FAR; bound {bound(0.05, seeds):.3f}); second: power",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds")
    seeds = 150 if parser.parse_args().quick else 400
    print_conditions("bench_drift_level")
    began = time.perf_counter()
    passive_far(seeds)
    passive_power(seeds // 2)
    dc_family(seeds)
    print(f"took {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
