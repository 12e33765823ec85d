"""Appends with commitments against plain appends, measured in the same run on one node.

One ``custodes serve`` process (SQLite) and one set of registered agents. Before the
clock starts, the same decisions are signed twice: as plain version-1 records, and as
committed version-2 records (metadata and a salted commitment, the opening beside the
envelope). Then rounds alternate plain and committed bursts through the batch API (same
batch size, same client threads, same node), so drift on the shared machine falls on
both. A committed append does more: it parses the opening, recomputes the commitment
(SHA-256 over the RFC 8785 form), checks it against the metadata, and writes the clear
record and salt beside the log in the sequencing transaction. The ratio of the rates is
the figure the issue sets a target for (>= 0.9).

    .venv/bin/python benchmarks/bench_commitments.py [--entries N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

from _common import (
    _BASE_TIME,
    Agent,
    LoadResult,
    batch_body,
    console,
    drive_appends,
    fmt_ms,
    fmt_rate,
    make_agents,
    percentile,
    print_conditions,
    print_table,
    register_agents,
    running_node,
)
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.decisions import sign_committed_decision, sign_decision

TARGET_RATIO = 0.9
BATCH, THREADS = 500, 2


Job = tuple[bytes, str, int, str, bool]  # seed, agent, count, tag, committed


def _sign(job: Job) -> list[bytes]:
    """Canonical append items of ``count`` decisions by one agent (runs in a worker)."""
    seed, agent, count, tag, committed = job
    signer = EnvelopeSigner.from_seed(seed)
    sign = sign_committed_decision if committed else sign_decision
    out = []
    for n in range(count):
        item = sign(
            signer,
            agent,
            f"approve-transfer:{tag}:{n}",
            f"Counterparty risk score {n % 97} is below the 0.35 threshold set by the "
            "mandate; exposure after this transfer stays within the daily limit.",
            [f"acct-{n % 1013:04d}", "treasury-desk"],
            jurisdiction="GB",
            decided_at=_BASE_TIME + timedelta(milliseconds=n),
            idempotency_key=f"{tag}-{n}",
        )
        out.append(canonical_dumps(item.to_json()))
    return out


def presign(agents: Sequence[Agent], count: int, tag: str, committed: bool) -> list[bytes]:
    """``count`` items round-robin over ``agents``, signed on every CPU."""
    per = count // len(agents)
    jobs = [(a.signer.seed(), a.name, per, f"{tag}{i}", committed) for i, a in enumerate(agents)]
    with ProcessPoolExecutor(max(1, len(os.sched_getaffinity(0)))) as pool:
        signed = list(pool.map(_sign, jobs))
    return [signed[a][i] for i in range(per) for a in range(len(agents))]


def bodies(items: list[bytes]) -> list[tuple[bytes, int]]:
    return [
        (batch_body(items[i : i + BATCH]), len(items[i : i + BATCH]))
        for i in range(0, len(items), BATCH)
    ]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=4_000, help="entries per burst")
    parser.add_argument("--rounds", type=int, default=6, help="plain/committed pairs")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1,000 (make bench)")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.rounds = 1_000, 2
    return args


def main() -> None:
    args = _args()
    print_conditions("bench_commitments")
    agents = make_agents(args.agents, prefix="commit-agent")
    runs: dict[str, list[LoadResult]] = {"plain (v1)": [], "committed (v2)": []}
    sizes: dict[str, int] = {}
    with running_node() as node:
        register_agents(node.base_url, agents)
        for r in range(args.rounds):
            for kind, committed in (("plain (v1)", False), ("committed (v2)", True)):
                items = presign(agents, args.entries, f"{kind[0]}{r}-", committed)
                sizes[kind] = sum(len(i) for i in items) // len(items)
                load = drive_appends(node, bodies(items), THREADS)
                runs[kind].append(load)
                console.print(f"  round {r} {kind:<15} {fmt_rate(load.rate)}")
    rate = {k: sum(x.entries for x in v) / sum(x.seconds for x in v) for k, v in runs.items()}
    rows = [
        (
            kind,
            f"{sum(x.entries for x in loads):,}",
            f"{sizes[kind]:,} B",
            fmt_rate(rate[kind]),
            fmt_ms(percentile([t for x in loads for t in x.latencies], 50)),
            fmt_ms(percentile([t for x in loads for t in x.latencies], 99)),
            f"{sum(x.server_cpu_s for x in loads) / sum(x.entries for x in loads) * 1e6:,.0f} us",
        )
        for kind, loads in runs.items()
    ]
    ratio = rate["committed (v2)"] / rate["plain (v1)"]
    paired = sorted(
        c.rate / p.rate for p, c in zip(runs["plain (v1)"], runs["committed (v2)"], strict=True)
    )
    cpu = {k: sum(x.server_cpu_s for x in v) / sum(x.entries for x in v) for k, v in runs.items()}
    rows.append(("ratio committed / plain", "", "", f"{ratio:.2f}", "", "", ""))
    rows.append(("  median of round pairs", "", "", f"{paired[len(paired) // 2]:.2f}", "", "", ""))
    cpu_ratio = cpu["plain (v1)"] / cpu["committed (v2)"]
    rows.append(("  plain / committed CPU per entry", "", "", f"{cpu_ratio:.2f}", "", "", ""))
    print_table(
        "Appends with commitments against plain appends (one node, SQLite, same run)",
        ["entries", "count", "item size", "entries/s", "batch p50", "batch p99", "CPU/entry"],
        rows,
        caption=f"batch {BATCH}, {THREADS} client threads, alternating rounds; "
        f"target ratio >= {TARGET_RATIO}; the plain rate is the limit measured in this run",
    )


if __name__ == "__main__":
    main()
