"""Sustained ingestion through the batch API (POST /api/v1/entries), SQLite and PostgreSQL.

Several agents (each its own Ed25519 key) have their decisions pre-signed before the
clock starts; 2-4 httpx client threads then send batches of 500-1000 entries to a
``custodes serve`` process and count entries once the node has acknowledged them, i.e.
after signature verification and a durable commit. The same run measures strict Ed25519
verification on this machine with the library the node uses (libsodium through PyNaCl)
on 1 and 2 threads, and with OpenSSL for comparison: the node's 2-thread rate is the
ceiling for signature-verified ingestion, and the ratio to it is printed.

    .venv/bin/python benchmarks/bench_ingest.py [--db sqlite|postgresql|both] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from _common import (
    VERIFIERS,
    CpuMonitor,
    LoadResult,
    batch_body,
    console,
    drive_appends,
    ed25519_verify_rate,
    fmt_ms,
    fmt_rate,
    make_agents,
    percentile,
    postgres_available,
    presign,
    print_conditions,
    print_run_load,
    print_table,
    register_agents,
    running_node,
    throwaway_postgres,
    wait_for_checkpoint,
)

TARGET_SQLITE = 10_000
NODE_VERIFIER = next(iter(VERIFIERS))  # the library the node's ingest path verifies with
ANCHORS = [
    ("Tessera POSIX, SAS HDD (no antispam)", "~2,900/s"),
    ("Tessera POSIX, ZFS NVMe (antispam)", "~10,000/s"),
    ("Tessera GCP e2-micro", ">1,500/s"),
    ("Trillian + MySQL", "400-500/s"),
]


@dataclass(frozen=True)
class Config:
    batch: int
    threads: int


@dataclass(frozen=True)
class Plan:
    entries: int
    agents: int
    configs: tuple[Config, ...]
    verify_seconds: float


FULL = Plan(100_000, 8, (Config(500, 2), Config(1000, 2), Config(1000, 4)), 3.0)
QUICK = Plan(10_000, 4, (Config(500, 2),), 1.0)


@dataclass
class Row:
    db: str
    config: Config
    load: LoadResult
    integrated_after_s: float | None


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="a short run (10k entries)")
    parser.add_argument("--entries", type=int, help="entries per configuration")
    return parser.parse_args()


DatabaseFactory = Callable[[str], str | None]


@contextlib.contextmanager
def _databases(kind: str, monitor: CpuMonitor) -> Iterator[DatabaseFactory]:
    """For each configuration a fresh database: a new SQLite file (None: the node's data
    dir) or a new database on one throwaway PostgreSQL server."""
    if kind == "sqlite":
        yield lambda _name: None
        return
    with throwaway_postgres(monitor) as new_database:
        yield new_database


def _run_config(db: str, url: str | None, config: Config, entries: list[bytes], plan: Plan) -> Row:
    agents = make_agents(plan.agents)
    bodies = [
        (batch_body(entries[i : i + config.batch]), len(entries[i : i + config.batch]))
        for i in range(0, len(entries), config.batch)
    ]
    with running_node(database_url=url) as node:
        register_agents(node.base_url, agents)
        load = drive_appends(node, bodies, config.threads)
        integrated = wait_for_checkpoint(node, load.last_index + 1, timeout_s=120)
    console.print(
        f"  {db:<10} batch {config.batch:>5} x {config.threads} threads: "
        f"{fmt_rate(load.rate)} ({load.entries:,} entries in {load.seconds:.2f} s)"
    )
    return Row(db, config, load, integrated)


def _run_db(db: str, entries: list[bytes], plan: Plan, monitor: CpuMonitor) -> list[Row]:
    rows = []
    with _databases(db, monitor) as new_database:
        for n, config in enumerate(plan.configs):
            rows.append(_run_config(db, new_database(f"ingest{n}"), config, entries, plan))
    return rows


Rates = dict[tuple[str, int], float]  # (library, threads) -> verifications per second


def _print_results(rows: list[Row], verify: Rates) -> None:
    verify2 = verify[(NODE_VERIFIER, 2)]
    table_rows = [
        (
            r.db,
            r.config.batch,
            r.config.threads,
            f"{r.load.entries:,}",
            f"{r.load.seconds:.2f} s",
            fmt_rate(r.load.rate),
            fmt_ms(percentile(r.load.latencies, 50)),
            fmt_ms(percentile(r.load.latencies, 99)),
            r.load.retries,
            f"{r.load.server_cpu_s / r.load.seconds:.2f}",
            f"{r.load.server_cpu_s / r.load.entries * 1e6:,.0f} us",
            "-" if r.integrated_after_s is None else f"{r.integrated_after_s:.2f} s",
            f"{r.load.rate / verify2:.2f}",
        )
        for r in rows
    ]
    print_table(
        "Sustained ingestion (durable, acknowledged entries)",
        [
            "db",
            "batch",
            "clients",
            "entries",
            "time",
            "entries/s",
            "batch p50",
            "batch p99",
            "503 retries",
            "server cores",
            "server CPU/entry",
            "checkpoint after last ack",
            "ingest / node verify (2 thr)",
        ],
        table_rows,
        caption="server cores: node process CPU-seconds per wall second (the client runs "
        f"on the same machine); target >= {TARGET_SQLITE:,} entries/s on SQLite; node "
        f"verify: {NODE_VERIFIER}, measured in this run",
    )


def _print_limits(verify: Rates, rows: list[Row]) -> None:
    best = {db: max(r.load.rate for r in rows if r.db == db) for db in {r.db for r in rows}}
    limit_rows: list[tuple[str, str]] = [
        (f"strict Ed25519 verify, {lib}, {t} thread{'s' if t > 1 else ''}", fmt_rate(v))
        for (lib, t), v in verify.items()
    ]
    node1, node2 = verify[(NODE_VERIFIER, 1)], verify[(NODE_VERIFIER, 2)]
    limit_rows.append(("  node verifier's scaling, 2 threads / 1", f"{node2 / node1:.2f}"))
    for db, rate in sorted(best.items()):
        limit_rows.append((f"best ingest, {db}", fmt_rate(rate)))
        limit_rows.append((f"  ratio ingest / node verify (1 thread), {db}", f"{rate / node1:.2f}"))
        limit_rows.append(
            (f"  ratio ingest / node verify (2 threads), {db}", f"{rate / node2:.2f}")
        )
    limit_rows.append(("target, SQLite", f">= {TARGET_SQLITE:,}/s"))
    limit_rows.extend((f"anchor: {name}", value) for name, value in ANCHORS)
    print_table(
        "Physical limit and anchors",
        ["", "rate"],
        limit_rows,
        caption="the node verifies every entry's signature with libsodium in a 2-thread "
        "pool, so the node verifier's 2-thread rate is the ceiling for this ingest path on "
        "this machine (the client and the database share the same 2 cores)",
    )


def main() -> int:
    args = _parse_args()
    plan = QUICK if args.quick else FULL
    if args.entries:
        plan = Plan(args.entries, plan.agents, plan.configs, plan.verify_seconds)
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    if "postgresql" in dbs and not postgres_available():
        if args.db == "postgresql":
            console.print("[red]PostgreSQL binaries not found (apt-get install postgresql)")
            return 1
        console.print("[yellow]PostgreSQL binaries not found: PostgreSQL runs skipped")
        dbs.remove("postgresql")
    print_conditions("bench_ingest")
    with CpuMonitor() as monitor:
        console.print(f"measuring Ed25519 verification ({plan.verify_seconds:.1f} s each)…")
        verify = {
            (lib, t): ed25519_verify_rate(t, plan.verify_seconds, lib)
            for lib in VERIFIERS
            for t in (1, 2)
        }
        console.print(f"pre-signing {plan.entries:,} decisions by {plan.agents} agents…")
        entries = presign(make_agents(plan.agents), plan.entries, tag="ingest")
        rows = [row for db in dbs for row in _run_db(db, entries, plan, monitor)]
    _print_results(rows, verify)
    _print_limits(verify, rows)
    print_run_load("bench_ingest", monitor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
