"""Hostile bodies against a live node: does it keep answering, and keep renewing leases?

A ``custodes serve`` process with default settings; four client threads post maximal
bodies (as large as the node's body limit allows) back to back, while a prober asks for
``GET /api/v1/node`` every 20 ms and a registered agent renews its lease every 0.5 s.
The bodies are those an anonymous client can send:

* floats: a canonical JSON batch of floats, the body that once froze the node for seconds
  (``{"entries": [[0.5, 1.5, ...]]}``);
* unsigned batch: ``max_batch_entries`` well-formed decision envelopes signed by a key the
  node does not know, so every entry is parsed and checked before the batch is refused;
* baseline: no hostile clients, for comparison.

    .venv/bin/python benchmarks/bench_bodies.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import httpx
import orjson

from _common import (
    Agent,
    CpuMonitor,
    batch_body,
    console,
    fmt_ms,
    make_agents,
    percentile,
    presign,
    print_conditions,
    print_run_load,
    print_table,
    register_agents,
    running_node,
)
from custodes.config import Settings
from custodes.sdk import lease_request

TARGET_P99_S = 0.250
CLIENTS = 4
PROBE_EVERY_S = 0.02
LEASE_EVERY_S = 0.5
_JSON = {"Content-Type": "application/json"}


@dataclass
class Probe:
    node_latencies: list[float] = field(default_factory=list)
    node_failures: int = 0
    lease_latencies: list[float] = field(default_factory=list)
    lease_ok: int = 0
    lease_failed: int = 0


@dataclass
class Row:
    scenario: str
    body_bytes: int
    seconds: float
    answers: Counter[int]
    probe: Probe


def _float_body(limit: int) -> bytes:
    """The largest canonical ``{"entries": [[floats]]}`` under ``limit`` bytes."""
    count = limit // 6
    while True:
        body = b'{"entries":[' + orjson.dumps([n + 0.5 for n in range(count)]) + b"]}"
        if len(body) <= limit:
            return body
        count = count * 49 // 50


def _unsigned_body(settings: Settings) -> bytes:
    """``max_batch_entries`` decisions by an unregistered key, cut to fit the limit."""
    entries = presign(make_agents(1, prefix="stranger"), settings.max_batch_entries, "hostile")
    while len(batch_body(entries)) > settings.max_body_bytes:
        entries = entries[: len(entries) * 49 // 50]
    return batch_body(entries)


def _attack(url: str, body: bytes, seconds: float) -> Counter[int]:
    """One hostile client (its own process, so the prober's timings are not its own)."""
    answers: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds
    with httpx.Client(base_url=url, timeout=60.0) as client:
        while time.perf_counter() < deadline:
            try:
                status = client.post("/api/v1/entries", content=body, headers=_JSON).status_code
            except httpx.HTTPError:
                status = 0  # the node hung up (e.g. after a 503 with Connection: close)
            answers[status] += 1
            if status == 503:
                time.sleep(0.05)
    return answers


def _probe(url: str, agent: Agent, stop: threading.Event, probe: Probe) -> None:
    next_lease = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30.0) as client:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                ok = client.get("/api/v1/node").status_code == 200
            except httpx.HTTPError:
                ok = False
            probe.node_latencies.append(time.perf_counter() - began)
            probe.node_failures += not ok
            if began >= next_lease:
                next_lease = began + LEASE_EVERY_S
                _renew(client, agent, probe)
            time.sleep(max(0.0, PROBE_EVERY_S - (time.perf_counter() - began)))


def _renew(client: httpx.Client, agent: Agent, probe: Probe) -> None:
    body = lease_request(agent.signer, agent.name, time.time()).to_bytes()
    began = time.perf_counter()
    try:
        ok = client.post("/api/v1/leases", content=body, headers=_JSON).status_code == 201
    except httpx.HTTPError:
        ok = False
    probe.lease_latencies.append(time.perf_counter() - began)
    if ok:
        probe.lease_ok += 1
    else:
        probe.lease_failed += 1


def _run(url: str, agent: Agent, scenario: str, body: bytes | None, seconds: float) -> Row:
    stop = threading.Event()
    answers: Counter[int] = Counter()
    probe = Probe()
    prober = threading.Thread(target=_probe, args=(url, agent, stop, probe))
    began = time.perf_counter()
    prober.start()
    if body is None:
        time.sleep(seconds)
    else:
        with ProcessPoolExecutor(CLIENTS) as pool:
            for counts in pool.map(_attack, *zip(*[(url, body, seconds)] * CLIENTS, strict=True)):
                answers.update(counts)
    stop.set()
    prober.join()
    row = Row(scenario, len(body or b""), time.perf_counter() - began, answers, probe)
    console.print(
        f"  {scenario:<16} node p99 {fmt_ms(percentile(probe.node_latencies, 99))}, "
        f"leases {probe.lease_ok}/{probe.lease_ok + probe.lease_failed}"
    )
    return row


def _print(rows: list[Row]) -> None:
    table = []
    for r in rows:
        p99 = percentile(r.probe.node_latencies, 99)
        table.append(
            (
                r.scenario,
                f"{r.body_bytes:,}" if r.body_bytes else "-",
                " ".join(f"{s}x{n}" for s, n in sorted(r.answers.items())) or "-",
                f"{sum(r.answers.values()) / r.seconds:.1f}/s",
                fmt_ms(percentile(r.probe.node_latencies, 50)),
                fmt_ms(p99),
                fmt_ms(max(r.probe.node_latencies, default=float("nan"))),
                "ok" if p99 < TARGET_P99_S else "MISSED",
                f"{r.probe.lease_ok}/{r.probe.lease_ok + r.probe.lease_failed}",
                fmt_ms(percentile(r.probe.lease_latencies, 99)),
            )
        )
    print_table(
        f"GET /api/v1/node and lease renewals while {CLIENTS} clients post maximal bodies",
        [
            "scenario",
            "body bytes",
            "hostile answers (status x n)",
            "hostile req/s",
            "node p50",
            "node p99",
            "node max",
            f"p99 < {TARGET_P99_S * 1000:.0f} ms",
            "leases ok",
            "lease p99",
        ],
        table,
        caption=f"target: node p99 < {TARGET_P99_S * 1000:.0f} ms and every lease renewed; "
        "503 = large-body bound reached (Retry-After), 0 = connection closed by the node",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s per scenario (else 30 s)")
    seconds = 10.0 if parser.parse_args().quick else 30.0
    settings = Settings()
    print_conditions("bench_bodies")
    console.print("building the hostile bodies…")
    bodies = [
        ("baseline", None),
        ("floats", _float_body(settings.max_body_bytes)),
        ("unsigned batch", _unsigned_body(settings)),
    ]
    agent = make_agents(1, prefix="prober")[0]
    rows = []
    with CpuMonitor() as monitor, running_node() as node:
        register_agents(node.base_url, [agent])
        for scenario, body in bodies:
            rows.append(_run(node.base_url, agent, scenario, body, seconds))
    _print(rows)
    print_run_load("bench_bodies", monitor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
