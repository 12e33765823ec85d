"""A forensic timeline of 10,000 events across four members: verify, render, write, read.

Before the clock starts, ``tests/forensics/synthetic.py`` builds a genuine timeline: a
four-member alliance with real Ed25519 keys, each member's Merkle log of real DSSE
entries (plain and committed decisions, halts, kill orders and lifts, cross-log refs),
checkpoints signed by each log key and cosigned by every member's witness, and an
inclusion proof per event. Then, each timed on its own, median of ``--rounds``:

1. ``verify_bundle``: the roster's signatures, each checkpoint's signature and quorum,
   every event's leaf hash, inclusion proof, envelope and payload, every clear record
   against its commitment, and the order against every ref;
2. ``render_report``: the standalone HTML with the SVG chart and the event table;
3. ``write_bundle`` (RFC 8785 JSON, atomic) and ``read_bundle`` (parse and validate).

The issue's target is under 10 s for the whole timeline *including* gathering over real
nodes; the gather is measured where the gatherer lives, and its figure adds to these.

    .venv/bin/python benchmarks/bench_forensics.py [--events N] [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import console, print_conditions, print_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.forensics.synthetic import synthetic_timeline

from custodes.forensics.bundle import read_bundle, write_bundle
from custodes.forensics.report import render_report
from custodes.forensics.verify import verify_bundle

TARGET_S = 10.0


def _median(step: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round (make bench)")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    print_conditions("bench_forensics")
    console.print(f"building a genuine timeline of {args.events:,} events (not timed)...")
    timeline = synthetic_timeline(args.events)
    verified = verify_bundle(timeline)  # once untimed: the data is genuine
    console.print(verified.summary())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.json"
        steps = {
            "verify every proof and signature": lambda: verify_bundle(timeline),
            "render the HTML report": lambda: render_report(timeline, verified),
            "write the bundle (RFC 8785, atomic)": lambda: write_bundle(timeline, path),
            "read the bundle (parse, validate)": lambda: read_bundle(path),
        }
        seconds = {name: _median(step, rounds) for name, step in steps.items()}
        size = path.stat().st_size
        html = len(render_report(timeline, verified).encode())
    total = sum(seconds.values())
    rows = [(name, f"{s:.2f}") for name, s in seconds.items()]
    rows.append(("total (without the gather)", f"{total:.2f}"))
    print_table(
        f"Forensics: {args.events:,} events across four members, median of {rounds}",
        ("step", "seconds"),
        rows,
        caption=(
            f"target: whole timeline incl. gathering < {TARGET_S:.0f} s; these steps leave "
            f"{TARGET_S - total:.1f} s for the gather. Bundle {size / 1e6:.1f} MB, "
            f"report {html / 1e6:.1f} MB."
        ),
    )


if __name__ == "__main__":
    main()
