"""Cross-border look-ups: served from a mirror with proof, and how far the mirror lags.

Two real node processes on loopback (GB and DE, members of one genesis roster, each
witnessing the other: tests/integration/alliance.py). GB's operator registers agents;
DE mirrors GB's log over tlog-tiles. Then:

* (a) look-ups at DE for GB's agents (``GET /api/v1/alliance/agents/{id}``, public,
  random ids: record, status, orders, inclusion proof, checkpoint with cosignatures,
  age), from 16 and 64 kept-alive connections; beside them, in the same run and the
  same way, DE's cheapest endpoint (``GET /healthz``, which reads nothing): the rate of
  the HTTP stack itself, the physical limit a look-up can approach;
* (b) mirror lag: the GB regulator suspends an agent in a territory at GB; the time from
  GB's answer until DE's look-up shows it from its mirror (polled every 10 ms), p50/p99;
  orders a random 0-0.5 s apart, out of step with DE's reads of GB's checkpoint.

    .venv/bin/python benchmarks/bench_lookups.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from _common import REPO_ROOT, console, fmt_ms, fmt_rate, percentile, print_conditions, print_table

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.integration.alliance import Alliance, start_alliance

from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.bootstrap import Authorities, enrol_agent

PARTIES = {"GB": "member", "DE": "member"}
TERRITORIES = ("FR", "DE", "CA", "AU", "US", "JP", "IT", "ES", "NL", "SE")


@dataclass(frozen=True)
class Plan:
    agents: int
    requests: int
    clients: tuple[int, ...]
    lag_samples: int


FULL = Plan(agents=200, requests=10_000, clients=(16, 64), lag_samples=40)
QUICK = Plan(agents=40, requests=4_000, clients=(16,), lag_samples=10)


@dataclass
class Load:
    latencies: list[float]
    seconds: float
    failures: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> int:
    writer.write(head)
    header = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(header[9:12])


def drive(url: str, paths: Sequence[str], clients: int) -> Load:
    """GET every path over ``clients`` kept-alive connections (a minimal HTTP/1.1 client
    on asyncio streams: httpx's pool would cost more CPU than the node's answer)."""
    host = url.removeprefix("http://")
    heads = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths]

    async def run() -> Load:
        feed, latencies, failures = iter(heads), [], 0

        async def work() -> None:
            nonlocal failures
            reader, writer = await asyncio.open_connection(*host.rsplit(":", 1))
            try:
                for head in feed:
                    began = time.perf_counter()
                    status = await _exchange(reader, writer, head)
                    latencies.append(time.perf_counter() - began)
                    failures += status != 200
            finally:
                writer.close()

        began = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(clients)))
        return Load(latencies, time.perf_counter() - began, failures)

    return asyncio.run(run())


def _mirrored(url: str, size: int) -> bool:
    response = httpx.get(f"{url}/api/v1/alliance/mirrors", timeout=5)
    if response.status_code != 200:
        console.print(f"  DE's mirrors: HTTP {response.status_code} {response.text[:300]}")
        return False
    states = response.json()
    return any(s["party"] == "GB" and s["size"] >= size for s in states)


def _wait(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _setup(alliance: Alliance, plan: Plan) -> tuple[Authorities, list[str]]:
    gb, de = alliance["GB"], alliance["DE"]
    authorities = gb.bootstrap()
    ids = [
        enrol_agent(authorities, EnvelopeSigner.generate(), f"bench-{i}")
        for i in range(plan.agents)
    ]
    size = int(httpx.get(f"{gb.url}/api/v1/health", timeout=5).json()["sequenced"])
    _wait("DE's mirror to hold GB's agents", lambda: _mirrored(de.url, size))
    return authorities, ids


def _throughput(url: str, ids: list[str], plan: Plan) -> list[list[object]]:
    rng = random.Random(7)
    lookups = [f"/api/v1/alliance/agents/{rng.choice(ids)}" for _ in range(plan.requests)]
    drive(url, lookups[:2_000], 16)  # warm: each agent's answer computed once
    rows = []
    for clients in plan.clients:
        limit = drive(url, ["/healthz"] * plan.requests, clients)
        load = drive(url, lookups, clients)
        console.print(
            f"  {clients} clients: look-ups {fmt_rate(load.rate)}, /healthz {fmt_rate(limit.rate)}"
        )
        rows.append(
            [
                clients,
                fmt_rate(load.rate),
                fmt_ms(percentile(load.latencies, 50)),
                fmt_ms(percentile(load.latencies, 99)),
                load.failures,
                fmt_rate(limit.rate),
                f"{load.rate / limit.rate:.2f}",
            ]
        )
    return rows


def _shows(url: str, agent_id: str, territory: str) -> bool:
    answer = httpx.get(f"{url}/api/v1/alliance/agents/{agent_id}", timeout=5).json()
    return answer.get("source") == "mirror" and territory in answer.get("suspended_in", [])


def _lag(alliance: Alliance, authorities: Authorities, ids: list[str], plan: Plan) -> list[float]:
    de = alliance["DE"]
    lags, rng = [], random.Random(11)
    for n in range(plan.lag_samples):
        # Out of step with DE's reads, or each sample would start just after one.
        time.sleep(rng.uniform(0, 0.5))
        agent_id, territory = ids[n % len(ids)], TERRITORIES[n // len(ids) % len(TERRITORIES)]
        authorities.regulator.order("suspend", agent_id, "bench", territory=territory)
        began = time.perf_counter()
        while not _shows(de.url, agent_id, territory):
            time.sleep(0.01)
            if time.perf_counter() - began > 30:
                raise RuntimeError("DE's mirror did not show the order within 30 s")
        lags.append(time.perf_counter() - began)
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (smoke test)")
    plan = QUICK if parser.parse_args().quick else FULL
    print_conditions("bench_lookups")
    with tempfile.TemporaryDirectory(prefix="custodes-lookups-") as root:
        alliance = start_alliance(Path(root), PARTIES)
        try:
            authorities, ids = _setup(alliance, plan)
            console.print(f"GB registered {len(ids)} agents; DE mirrors them")
            rows = _throughput(alliance["DE"].url, ids, plan)
            lags = _lag(alliance, authorities, ids, plan)
        finally:
            alliance.stop()
    print_table(
        "(a) look-ups at DE for GB's agents, from DE's mirror with proof (target >= 2,000/s)",
        ["clients", "look-ups", "p50", "p99", "failed", "GET /healthz (limit)", "ratio"],
        rows,
        caption="one DE node process (uvicorn, one worker); both figures measured in this run",
    )
    print_table(
        "(b) mirror lag: order accepted at GB -> DE's look-up shows it (target p99 < 2 s)",
        ["samples", "p50", "p99", "max"],
        [
            [
                len(lags),
                fmt_ms(percentile(lags, 50)),
                fmt_ms(percentile(lags, 99)),
                fmt_ms(max(lags)),
            ]
        ],
        caption="DE reads GB's checkpoint every 0.5 s (CUSTODES_MIRROR_INTERVAL)",
    )


if __name__ == "__main__":
    main()
