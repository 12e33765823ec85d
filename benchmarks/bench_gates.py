"""Deployment-gate overhead on lease issuance (issue 10, target p99 < 2 ms).

One in-process node (SQLite), a critical finance agent homed here with its audit
recognised in four jurisdictions: this node's own (its recognitions table) and three
peers (each a mirror database of the same schema, read as the gate reads a peer mirror).
Lease requests are issued one after another, the three ways interleaved in the same
run so the machine's load falls on each alike:

- no gate (leases as before issue 10),
- the gate, uncached (``gate_cache_ttl`` 0: the digests and four in-force queries on
  every lease),
- the gate with its default 1 s cache,

and the gate call alone (uncached, and cached: what a lease pays on a hit). Each lease
request is signed before its timer starts; the lease itself (verify, nonce claim, sign)
is what "no gate" measures.

    .venv/bin/python benchmarks/bench_gates.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import REPO_ROOT, console, percentile, print_conditions, print_table

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.audits.gate_world import IN_FORCE, gate_world
from tests.databases import node_settings

from custodes.federation.gates import DeploymentGate
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.registry.projection import load_agent
from custodes.sdk.leases import lease_request
from custodes.store.db import read_tx

QUICK, FULL = 300, 3000


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def _timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (smoke test)")
    rounds = QUICK if parser.parse_args().quick else FULL
    print_conditions("bench_gates")
    with tempfile.TemporaryDirectory(prefix="custodes-gates-") as root:
        base = Path(root)
        node = Node(node_settings(base, f"sqlite:///{base / 'node.db'}"))
        node.start()
        try:
            times = _measure(node, base, rounds)
        finally:
            node.close()
    _report(times, rounds)


def _measure(node: Node, base: Path, rounds: int) -> dict[str, list[float]]:
    world = gate_world(node, base, ttl=0.0)
    key = EnvelopeSigner.generate()
    agent_id, digest = world.agent(key, operating=("FR", "DE", "CA"))
    for code in ("ZZ", "FR", "DE", "CA"):
        world.decide(agent_id, code, model=digest)
    uncached = world.gate
    cached = DeploymentGate(world.recognitions, scheme=lambda: IN_FORCE, ttl=1.0)
    with read_tx(node.engine) as conn:
        agent = load_agent(conn, agent_id)
    places = {"ZZ", "FR", "DE", "CA"}
    assert uncached(agent, places).allowed == places  # recognised everywhere
    modes: dict[str, DeploymentGate | None] = {
        "no gate": None,
        "gate (uncached)": uncached,
        "gate (1 s cache)": cached,
    }
    alone = ("gate call alone (uncached)", "gate call alone (1 s cache)")
    times: dict[str, list[float]] = {name: [] for name in (*modes, *alone)}
    console.print(f"{rounds} leases per way, interleaved; agent {agent_id}")
    for _ in range(rounds):
        for name, gate in modes.items():
            node.leases.gate = gate
            request = lease_request(key, agent_id, time.time()).to_json()
            times[name].append(_timed(lambda r=request: node.leases.issue(r)))
        times[alone[0]].append(_timed(lambda: uncached(agent, places)))
        times[alone[1]].append(_timed(lambda: cached(agent, places)))
    return times


def _report(times: dict[str, list[float]], rounds: int) -> None:
    rows = [
        [name, len(values), _ms(percentile(values, 50)), _ms(percentile(values, 99))]
        for name, values in times.items()
    ]
    base = times["no gate"]
    for name in ("gate (uncached)", "gate (1 s cache)"):
        p50 = percentile(times[name], 50) - percentile(base, 50)
        p99 = percentile(times[name], 99) - percentile(base, 99)
        rows.append([f"overhead: {name} - no gate", rounds, _ms(p50), _ms(p99)])
    print_table(
        "Deployment gate on lease issuance (target: overhead p99 < 2 ms)",
        ["way", "leases", "p50", "p99"],
        rows,
        caption="in-process node on SQLite; critical agent recognised in 4 jurisdictions "
        "(own table + 3 peer mirror databases); the three ways interleaved in one run. "
        "On a shared machine the difference of two p99s is mostly noise: the 'gate call "
        "alone' rows time the gate itself, what each lease pays on top",
    )


if __name__ == "__main__":
    main()
