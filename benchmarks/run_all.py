"""Run every benchmark with --quick (``make bench``); exit non-zero if any script fails.

Each script runs in its own interpreter, one after another, with its output passed
through; a summary table of exit codes and wall times closes the run. Timings are
reported, never asserted: a benchmark fails only when it cannot measure.

    .venv/bin/python benchmarks/run_all.py [--full]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_ingest.py",
    "bench_latency.py",
    "bench_proofs.py",
    "bench_evals.py",
    "bench_killswitch.py",
    "bench_registry.py",
    "bench_bodies.py",
    "bench_scale.py",
    # issue 8: judges, statistics, attacks
    "bench_judges.py",
    "bench_judges_adapters.py",
    "bench_coverage.py",
    "bench_drift_level.py",
    "bench_adaptive.py",
    "bench_agentdojo.py",
    # issue 9: the alliance as one system
    "bench_roster.py",
    "bench_commitments.py",
    "bench_lookups.py",
    "bench_cross_border_orders.py",
    "bench_split_view.py",
    # issue 10: mutual recognition, gates, trade
    "bench_recognition.py",
    "bench_gates.py",
    "bench_counterparty.py",
    # issue 11: the red-teaming repository
    "bench_taxii.py",
    "bench_redteam_fanout.py",
)
TIMEOUT_S = {"quick": 600, "full": 3600}


def _run(script: str, mode: str) -> tuple[int, float]:
    args = [sys.executable, str(HERE / script)] + (["--quick"] if mode == "quick" else [])
    began = time.perf_counter()
    try:
        code = subprocess.run(args, check=False, timeout=TIMEOUT_S[mode]).returncode
    except subprocess.TimeoutExpired:
        code = 124
    return code, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full-size runs instead of --quick")
    mode = "full" if parser.parse_args().full else "quick"
    console = Console()
    results = []
    for script in SCRIPTS:
        console.rule(f"{script} ({mode})")
        results.append((script, *_run(script, mode)))
    table = Table(title=f"benchmarks ({mode})", title_justify="left")
    for name in ("script", "exit code", "wall time"):
        table.add_column(name)
    for script, code, seconds in results:
        status = "ok" if code == 0 else f"[red]{code}{' (timeout)' if code == 124 else ''}"
        table.add_row(script, status, f"{seconds:.0f} s")
    console.print(table)
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
