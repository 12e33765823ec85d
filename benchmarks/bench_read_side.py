"""The Black Box read side: filling the decision index, and pages of proven decisions.

A node on SQLite (in-process, no HTTP) holds one agent's N decisions (real DSSE
envelopes, sequenced 1,000 per transaction, then integrated). Then:

* catch-up: the decision index filled from watermark 0 over the whole log (what the first
  read after migration 0006 or a fresh start does), entries/s; beside it, the rate of
  only reading the same entries' bytes out of the database in the same chunks (the
  floor any index fill pays), and the ratio;
* pages: ``decisions_page`` of 100 and of 1,000 decisions in a one-hour window, with the
  proof cache cold and warm: median and p95 ms over repeated calls.

    .venv/bin/python benchmarks/bench_read_side.py [--entries N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from custodes.api.readside import Window, decisions_page
from custodes.config import Settings
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.prover import ProofCache
from custodes.ledger.readindex import decision_index, micros, read_index_state
from custodes.ledger.store import SequencedEntry, entries
from custodes.node import Node
from custodes.sdk.decisions import sign_decision
from custodes.store.db import read_tx, write_tx

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_BATCH = 1_000
_REPEATS = 20


def _fill(node: Node, key: EnvelopeSigner, agent: str, count: int) -> None:
    for start in range(0, count, _BATCH):
        batch = []
        for n in range(start, min(count, start + _BATCH)):
            at = T0 + timedelta(seconds=n)
            envelope = sign_decision(key, agent, f"trade #{n}", "within mandate", decided_at=at)
            data = canonical_dumps(envelope.to_json())
            batch.append(SequencedEntry(data, leaf_hash(data), envelope.payload_type))
        node.store.sequence(batch)
    while node.log.integrate() is not None:
        pass


def _reset_index(node: Node) -> None:
    with write_tx(node.engine) as conn:
        conn.execute(decision_index.delete())
        conn.execute(update(read_index_state).values(size=0))


def _read_floor(node: Node, size: int) -> float:
    began = time.perf_counter()
    for start in range(0, size, 2_000):
        with read_tx(node.engine) as conn:
            conn.execute(
                entries.select().where(entries.c.idx >= start, entries.c.idx < start + 2_000)
            ).all()
    return size / (time.perf_counter() - began)


def _catch_up(node: Node) -> float:
    _reset_index(node)
    began = time.perf_counter()
    size = node.read_index.catch_up("decisions")
    return size / (time.perf_counter() - began)


def _page_ms(node: Node, agent: str, limit: int, *, cold: bool) -> tuple[float, float]:
    window = Window(micros(T0 + timedelta(hours=2)), micros(T0 + timedelta(hours=3)))
    times = []
    for _ in range(_REPEATS):
        if cold:
            node.proofs = ProofCache(node.store)
        began = time.perf_counter()
        page = decisions_page(node, agent, window, None, limit)
        times.append((time.perf_counter() - began) * 1000)
        assert len(page["items"]) == limit
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def _enrol(node: Node, key: EnvelopeSigner) -> str:
    """The agent enrolled the way the tests enrol one (tests/enrol.py, in-process)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.enrol import enrol  # noqa: PLC0415 - the repository root is on the path now

    return enrol(node, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="custodes-bench-read-") as scratch:
        settings = Settings(data_dir=Path(scratch), origin="bench.custodes.example/log")
        node = Node(settings)
        node.log.sequencer.start()
        try:
            key = EnvelopeSigner.from_seed(b"b" * 32)
            agent = _enrol(node, key)
            _fill(node, key, agent, args.entries)
            size = node.store.tree_size()[0]
            floor, rate = _read_floor(node, size), _catch_up(node)
            print(f"decision index over {size} entries (SQLite, one thread)")
            print(f"  catch-up            {rate:>10,.0f} entries/s")
            print(f"  read-only floor     {floor:>10,.0f} entries/s   ratio {rate / floor:.2f}")
            print(f"pages of an agent's decisions with proofs ({_REPEATS} calls each)")
            print("  limit  cache   median ms   p95 ms")
            for limit in (100, 1_000):
                for cold in (True, False):
                    median, p95 = _page_ms(node, agent, limit, cold=cold)
                    label = "cold" if cold else "warm"
                    print(f"  {limit:>5}  {label:<5} {median:>10.1f} {p95:>8.1f}")
        finally:
            node.close()


if __name__ == "__main__":
    main()
