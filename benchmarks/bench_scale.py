"""Appends and lease renewals as the log grows: p50/p99 at 10k, 1M and 10M entries.

For each size a node's database is prefilled directly (executemany in big transactions:
decision-shaped entries with their real leaf hashes, idempotency keys of the SDK's
shape, the tree integrated by the node's own code), then ``custodes serve`` runs the
soak's load for a while: decisions at ~125/s in small batches with idempotency keys (as
the SDK's recorder sends them) and lease renewals at ~20/s from registered agents, all
at once. Each request's latency is recorded; the table shows p50/p99 per size.

Targets (issue 13, items 15 and 17): append and lease p99 flat within 2x from the
smallest size to the largest; lease p99 < 100 ms under this load.

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--sizes 10000,1000000]
                                               [--db sqlite|postgresql]

``--quick`` runs 10k and 100k; the default runs 10k, 1M and 10M (10M takes a long time
and several GB of disk). Prefilled entries are not signed: they only make the tables
the size a real log's would be.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from sqlalchemy import insert, update

from _common import (
    Agent,
    NodeProcess,
    batch_body,
    console,
    fmt_ms,
    make_agents,
    percentile,
    postgres_available,
    presign,
    print_conditions,
    print_table,
    reading_node,
    register_agents,
    running_node,
    throwaway_postgres,
)
from custodes.config import Settings
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.store import entries, idempotency, log_state
from custodes.sdk.leases import lease_request
from custodes.store.db import write_tx

ORIGIN = "bench.custodes.example/log"
AGENTS = 20
PREFILL_TX = 100_000  # rows per prefill transaction
DECISIONS_PER_S = 125  # the soak's load
BATCH = 5  # entries per append request (the recorder batches what it holds)
LEASES_PER_S = 20
LEASE_P99_TARGET_S = 0.100
FLAT_WITHIN = 2.0


@dataclass
class Figures:
    size: int
    prefill_s: float
    appends: list[float]
    leases: list[float]
    lease_errors: int


# --- prefill -------------------------------------------------------------------------------


def _fake_entry(n: int, agent: str) -> tuple[bytes, str]:
    """A decision-shaped entry (not signed) and its idempotency key."""
    key = str(uuid.UUID(bytes=hashlib.sha256(n.to_bytes(8, "big")).digest()[:16]))
    payload = orjson.dumps(
        {
            "v": 1,
            "agent": agent,
            "action": f"approve-transfer:prefill:{n}",
            "rationale": "Counterparty risk is below the mandate's threshold.",
            "decided_at": "2026-01-01T00:00:00Z",
            "idempotency_key": key,
        }
    )
    sig = base64.b64encode(hashlib.sha512(payload).digest()).decode()
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": DECISION_TYPE,
        "signatures": [{"keyid": "prefill", "sig": sig}],
    }
    return orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS), key


def _rows(start: int, end: int, agents: list[Agent]) -> tuple[list[dict], list[dict]]:
    rows, keys = [], []
    now = time.time()
    for n in range(start, end):
        agent = agents[n % len(agents)].name
        data, key = _fake_entry(n, agent)
        rows.append(
            {
                "idx": n,
                "leaf_hash": leaf_hash(data),
                "data": data,
                "payload_type": DECISION_TYPE,
                "sequenced_at": now,
            }
        )
        keys.append({"agent": agent, "key": key, "entry_index": n})
    return rows, keys


def prefill(data_dir: Path, url: str | None, size: int, agents: list[Agent]) -> None:
    """Grow the stopped node's log to ``size`` entries and integrate the tree."""
    settings = Settings(data_dir=data_dir, origin=ORIGIN, jurisdiction="ZZ")
    if url is not None:
        settings = Settings(data_dir=data_dir, origin=ORIGIN, jurisdiction="ZZ", database_url=url)
    with reading_node(settings) as node:
        start = node.store.sequenced_size()
        for at in range(start, size, PREFILL_TX):
            rows, keys = _rows(at, min(size, at + PREFILL_TX), agents)
            with write_tx(node.engine) as conn:
                conn.execute(insert(entries), rows)
                conn.execute(insert(idempotency), keys)
                conn.execute(update(log_state).values(sequenced=at + len(rows)))
            while node.log.integrate() is not None:
                pass
            console.print(f"  prefilled {at + len(rows):,} / {size:,}")


# --- load ----------------------------------------------------------------------------------


def _paced(period: float, stop: threading.Event) -> Iterator[None]:
    next_at = time.perf_counter()
    while not stop.is_set():
        yield
        next_at += period
        time.sleep(max(0.0, next_at - time.perf_counter()))


def _appends(
    node: NodeProcess, bodies: Iterator[bytes], out: list[float], stop: threading.Event
) -> None:
    with httpx.Client(base_url=node.base_url, timeout=60.0) as client:
        for _ in _paced(BATCH / DECISIONS_PER_S * 4, stop):  # four such threads
            body = next(bodies, None)
            if body is None:
                return
            began = time.perf_counter()
            response = client.post("/api/v1/entries", content=body)
            if response.status_code != 200:
                raise RuntimeError(f"append failed: {response.status_code} {response.text[:200]}")
            out.append(time.perf_counter() - began)


def _leases(
    node: NodeProcess,
    agents: list[Agent],
    out: list[float],
    errors: list[int],
    stop: threading.Event,
) -> None:
    with httpx.Client(base_url=node.base_url, timeout=60.0) as client:
        for n, _ in enumerate(_paced(2 / LEASES_PER_S, stop)):  # two such threads
            agent = agents[n % len(agents)]
            body = lease_request(agent.signer, agent.name, time.time()).to_bytes()
            began = time.perf_counter()
            response = client.post("/api/v1/leases", content=body)
            if response.status_code != 201:
                errors.append(response.status_code)
                continue
            out.append(time.perf_counter() - began)


def measure(node: NodeProcess, agents: list[Agent], seconds: float, tag: str) -> Figures:
    count = int(DECISIONS_PER_S * seconds * 1.2)
    signed = presign(agents, count, tag=tag)
    bodies = iter([batch_body(signed[i : i + BATCH]) for i in range(0, count, BATCH)])
    feed = threading.Lock()

    def take() -> Iterator[bytes]:
        while True:
            with feed:
                body = next(bodies, None)
            if body is None:
                return
            yield body

    figures = Figures(0, 0.0, [], [], 0)
    errors: list[int] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_appends, args=(node, take(), figures.appends, stop))
        for _ in range(4)
    ] + [
        threading.Thread(target=_leases, args=(node, agents[i::2], figures.leases, errors, stop))
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    figures.lease_errors = len(errors)
    return figures


def run_size(size: int, url: str | None, agents: list[Agent], seconds: float) -> Figures:
    """Prefill a fresh log (SQLite, or the PostgreSQL database at ``url``), then load it."""
    with tempfile.TemporaryDirectory(prefix="custodes-scale-") as tmp:
        data_dir = Path(tmp)
        with running_node(data_dir=data_dir, database_url=url, origin=ORIGIN) as node:
            register_agents(node.base_url, agents)
        began = time.perf_counter()
        prefill(data_dir, url, size, agents)
        prefill_s = time.perf_counter() - began
        with running_node(data_dir=data_dir, database_url=url, origin=ORIGIN) as node:
            figures = measure(node, agents, seconds, tag=f"scale{size}")
        figures.size, figures.prefill_s = size, prefill_s
        return figures


# --- report --------------------------------------------------------------------------------


def _ratio(results: list[Figures], pick: str) -> float:
    first = percentile(getattr(results[0], pick), 99)
    last = percentile(getattr(results[-1], pick), 99)
    return last / first if first else float("nan")


def report(results: list[Figures], db: str) -> None:
    rows = [
        (
            f"{f.size:,}",
            f"{f.prefill_s:,.0f} s",
            len(f.appends),
            fmt_ms(percentile(f.appends, 50)),
            fmt_ms(percentile(f.appends, 99)),
            len(f.leases),
            fmt_ms(percentile(f.leases, 50)),
            fmt_ms(percentile(f.leases, 99)),
            f.lease_errors,
        )
        for f in results
    ]
    print_table(
        f"appends ({BATCH}-entry batches, {DECISIONS_PER_S}/s) and lease renewals "
        f"({LEASES_PER_S}/s) at once, by log size ({db})",
        [
            "log size",
            "prefill",
            "appends",
            "append p50",
            "append p99",
            "leases",
            "lease p50",
            "lease p99",
            "lease errors",
        ],
        rows,
        caption=(
            f"target: p99 flat within {FLAT_WITHIN:.0f}x across sizes "
            f"(append {_ratio(results, 'appends'):.2f}x, lease {_ratio(results, 'leases'):.2f}x); "
            f"lease p99 < {LEASE_P99_TARGET_S * 1000:.0f} ms"
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k entries, 15 s each")
    parser.add_argument("--sizes", help="comma-separated log sizes (overrides --quick's)")
    parser.add_argument("--seconds", type=float, help="load duration per size")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 1_000_000, 10_000_000]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    seconds = args.seconds or (15.0 if args.quick else 30.0)
    print_conditions("bench_scale")
    agents = make_agents(AGENTS, prefix="scale-agent")
    if args.db == "postgresql" and not postgres_available():
        console.print("[red]PostgreSQL binaries not found (apt-get install postgresql)")
        return 1
    results = []
    with contextlib.ExitStack() as stack:
        new_database = (
            stack.enter_context(throwaway_postgres()) if args.db == "postgresql" else None
        )
        for size in sizes:
            console.print(f"log of {size:,} entries: prefill, then {seconds:.0f} s of load")
            url = None if new_database is None else new_database(f"scale{size}")
            results.append(run_size(size, url, agents, seconds))
    report(results, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
