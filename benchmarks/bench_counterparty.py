"""Counterparty checks per second, cached and uncached (docs/design/0028).

A two-member alliance (GB, FR) of real nodes served over HTTP in this process
(tests/sdk/trade_world.py: the app on uvicorn, each mirroring the other). FR registers
agents recognised in GB and FR; a GB agent's ``Counterparty`` checks them:

* uncached: every check asks GB's node for the FR agent's look-up and recognitions
  (two HTTP round trips) and verifies both against the roster (checkpoint signatures,
  inclusion proofs, each decision's signature) and the presented lease; beside it, in the
  same run, GB's ``GET /healthz`` round trips per second on one connection: two of them
  per check is the HTTP limit an uncached check can approach;
* cached: within half the lease only the presented lease is verified (one Ed25519
  signature); beside it, strict Ed25519 verifications per second on one core (libsodium,
  the node's library): the limit a cached check can approach.

One client thread each (an agent checks as it acts). Timings are reported, never asserted.

    .venv/bin/python benchmarks/bench_counterparty.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from _common import (
    REPO_ROOT,
    console,
    ed25519_verify_rate,
    fmt_ms,
    fmt_rate,
    percentile,
    print_conditions,
    print_table,
)

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.sdk.trade_world import SECTOR, TradeWorld, trade_world

from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.counterparty import Counterparty


@dataclass(frozen=True)
class Plan:
    agents: int
    uncached: int
    cached: int


FULL = Plan(agents=20, uncached=2_000, cached=50_000)
QUICK = Plan(agents=5, uncached=300, cached=10_000)
CHECKER = "urn:custodes:gb:agent:checker"


def _setup(world: TradeWorld, plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """FR agents recognised in GB and FR, each with a live lease, mirrored at GB."""
    agents = []
    for n in range(plan.agents):
        key = EnvelopeSigner.generate()
        agent_id = world["FR"].enrol(f"seller-{n}", key, operating=("GB",))
        digests = world["FR"].digests(agent_id)
        world["GB"].decide(agent_id, digests=digests)
        world["FR"].decide(agent_id, digests=digests)
        agents.append((agent_id, world["FR"].lease(agent_id, key)))
    world.mirrored("GB", "FR", world["FR"].node.store.sequenced_size() - 1)
    return agents


def _timed(count: int, one: Callable[[int], bool]) -> tuple[list[float], float, int]:
    latencies, failures = [], 0
    began = time.perf_counter()
    for n in range(count):
        start = time.perf_counter()
        if not one(n):
            failures += 1
        latencies.append(time.perf_counter() - start)
    return latencies, time.perf_counter() - began, failures


def _uncached(world: TradeWorld, agents: list[Any], count: int) -> tuple[list[float], float, int]:
    with world["GB"].client() as client:
        checker = Counterparty(client, world.roster, CHECKER, None)

        def one(_n: int) -> bool:
            checker._cache.until.clear()  # every check asks the alliance
            agent_id, lease = random.choice(agents)
            return checker.check(agent_id, lease, SECTOR).ok

        return _timed(count, one)


def _cached(world: TradeWorld, agents: list[Any], count: int) -> tuple[list[float], float, int]:
    with world["GB"].client() as client:
        checker = Counterparty(client, world.roster, CHECKER, None)
        for agent_id, lease in agents:
            assert checker.check(agent_id, lease, SECTOR).ok

        def one(_n: int) -> bool:
            agent_id, lease = random.choice(agents)
            verdict = checker.check(agent_id, lease, SECTOR)
            return verdict.ok and verdict.cached

        return _timed(count, one)


def _healthz_rate(url: str, count: int) -> float:
    with httpx.Client(base_url=url) as http:
        began = time.perf_counter()
        for _ in range(count):
            http.get("/healthz").raise_for_status()
        return count / (time.perf_counter() - began)


def _row(name: str, measured: tuple[list[float], float, int], limit: float, per: int) -> list[Any]:
    latencies, seconds, failures = measured
    rate = len(latencies) / seconds
    return [
        name,
        len(latencies),
        fmt_rate(rate),
        fmt_ms(percentile(latencies, 50)),
        fmt_ms(percentile(latencies, 99)),
        failures,
        fmt_rate(limit / per),
        f"{rate / (limit / per):.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (smoke test)")
    plan = QUICK if parser.parse_args().quick else FULL
    print_conditions("bench_counterparty")
    with (
        tempfile.TemporaryDirectory(prefix="custodes-counterparty-") as root,
        trade_world(Path(root)) as world,
    ):
        agents = _setup(world, plan)
        console.print(f"FR registered {len(agents)} agents, recognised in GB and FR")
        uncached = _uncached(world, agents, plan.uncached)
        healthz = _healthz_rate(world["GB"].url, plan.uncached)
        cached = _cached(world, agents, plan.cached)
    verify_rate = ed25519_verify_rate(1, 1.0, "libsodium (PyNaCl), the node's")
    print_table(
        "counterparty checks by one GB agent of FR agents (registry, lease, recognitions)",
        ["check", "checks", "rate", "p50", "p99", "failed", "limit", "ratio"],
        [
            _row("uncached (2 look-ups, verified)", uncached, healthz, 2),
            _row("cached (lease signature only)", cached, verify_rate, 1),
        ],
        caption=(
            "limits measured in this run: uncached, GET /healthz round trips on one "
            "connection / 2; cached, strict Ed25519 verifications on one core. Nodes and "
            "checker share this process (in-process uvicorn), so the uncached figure "
            "includes the node's own work"
        ),
    )


if __name__ == "__main__":
    main()
