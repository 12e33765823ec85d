"""Several API workers on one PostgreSQL database (``custodes serve --workers N``).

Part 1 (appends): 8 client threads append batches of 50 pre-signed decisions for a fixed
time through ``--workers 1`` and through ``--workers 3`` on a fresh throwaway PostgreSQL
database each; entries/s acknowledged (durable) for each.

Part 2 (push across workers): on the 3-worker node, one kill-order stream per worker
(``X-Custodes-Worker`` says which); a regulator issues orders one at a time through a
connection on one worker; per order and stream, the time from sending the order's POST to
the event on that stream (the 201 answer comes after the other workers were told, so an
event may arrive before it), split into the issuing worker's stream (pushed in-process)
and the other workers' streams (LISTEN/NOTIFY, then a read of the entry).

    .venv/bin/python benchmarks/bench_workers.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from _common import (
    cli_path,
    fmt_ms,
    fmt_rate,
    free_port,
    percentile,
    print_conditions,
    print_table,
    throwaway_postgres,
)
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.bootstrap import bootstrap, enrol_agent
from custodes.sdk.decisions import sign_decision
from custodes.sdk.pushes import sse_events

ADMIN = "bench-admin-token-" + "x" * 32
HEADER = "x-custodes-worker"


@contextlib.contextmanager
def serve(database_url: str, workers: int) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="custodes-bench-") as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
        env |= {
            "CUSTODES_DATA_DIR": data,
            "CUSTODES_ORIGIN": "bench.workers/log",
            "CUSTODES_JURISDICTION": "GB",
            "CUSTODES_DATABASE_URL": database_url,
            "CUSTODES_ADMIN_TOKEN": ADMIN,
        }
        port = free_port()
        args = [cli_path(), "serve", "--port", str(port), "--workers", str(workers)]
        with open(Path(data) / "serve.log", "wb") as log:
            process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_up(url, process)
            yield url
        finally:
            process.terminate()
            process.wait(30)


def _wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("custodes serve exited")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/v1/node", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("custodes serve did not answer")


def appends(url: str, seconds: float, threads: int = 8, batch: int = 50) -> float:
    with httpx.Client(base_url=url, timeout=30) as http:
        authorities = bootstrap(url, ADMIN, "GB", client=http)
        key = EnvelopeSigner.generate()
        agent = enrol_agent(authorities, key, "bench", risk_tier="minimal")
    bodies = [
        orjson.dumps(
            {
                "entries": [
                    sign_decision(key, agent, f"a{t}.{b}.{i}", "bench").to_json()
                    for i in range(batch)
                ]
            }
        )
        for t in range(threads)
        for b in range(40)
    ]
    done = [0] * threads
    stop = time.monotonic() + seconds

    def lane(t: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for body in bodies[t::threads]:
                if time.monotonic() >= stop:
                    return
                response = http.post("/api/v1/entries", content=body)
                response.raise_for_status()
                done[t] += batch

    began = time.monotonic()
    workers = [threading.Thread(target=lane, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.monotonic() - began)


def _stream(url: str, agent: str, out: queue.Queue[tuple[int, float]], ready: Any) -> None:
    with (
        contextlib.suppress(httpx.HTTPError),  # the node stops at the end of the run
        httpx.Client(timeout=httpx.Timeout(10, read=120)) as http,
        http.stream("GET", f"{url}/api/v1/kill-orders/stream", params={"agent_id": agent}) as r,
    ):
        ready(int(r.headers[HEADER]))
        for event in sse_events(r.iter_lines()):
            if event is not None and event[0] == "order":
                out.put((orjson.loads(event[1])["index"], time.monotonic()))


def pushes(url: str, orders: int) -> tuple[list[float], list[float]]:
    one_link = httpx.Limits(max_connections=1)  # the issuer stays on one worker
    with httpx.Client(base_url=url, timeout=30, limits=one_link) as http:
        authorities = bootstrap(url, ADMIN, "GB", operator="pushco", client=http)
        agent = enrol_agent(authorities, EnvelopeSigner.generate(), "pushed", risk_tier="minimal")
        return _pushes(url, http, authorities.regulator, agent, orders)


def _pushes(
    url: str, http: httpx.Client, issuer: Any, agent: str, orders: int
) -> tuple[list[float], list[float]]:
    inboxes: dict[int, queue.Queue[tuple[int, float]]] = {}
    for _ in range(60):
        if len(inboxes) == 3:
            break
        inbox: queue.Queue[tuple[int, float]] = queue.Queue()
        seen: queue.Queue[int] = queue.Queue()
        threading.Thread(target=_stream, args=(url, agent, inbox, seen.put), daemon=True).start()
        inboxes.setdefault(seen.get(timeout=60), inbox)
    worker = int(http.get("/api/v1/node").headers[HEADER])
    same, other = [], []
    lift = None
    for _ in range(orders):
        sent = time.monotonic()
        if lift is None:
            answer = issuer.order("suspend", agent, "bench")
            lift = answer["order_id"]
        else:
            answer = issuer.order("reinstate", agent, "bench", lifts=lift)
            lift = None
        for pid, inbox in inboxes.items():
            index, at = inbox.get(timeout=60)
            while index != answer["index"]:
                index, at = inbox.get(timeout=60)
            (same if pid == worker else other).append(at - sent)
    return same, other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    seconds, orders = (5.0, 20) if options.quick else (15.0, 60)
    print_conditions("bench_workers")
    with throwaway_postgres() as database:
        rates = []
        for workers in (1, 3):
            with serve(database(f"append{workers}"), workers) as url:
                rates.append([f"--workers {workers}", fmt_rate(appends(url, seconds))])
        print_table("appends through N workers (PostgreSQL)", ["serve", "entries/s"], rates)
        with serve(database("push"), 3) as url:
            same, other = pushes(url, orders)
    rows = [
        [name, str(len(v)), fmt_ms(percentile(v, 50)), fmt_ms(percentile(v, 99))]
        for name, v in (("issuing worker's stream", same), ("other workers' streams", other))
    ]
    title = "kill order: POST sent -> event on a stream (3 workers)"
    print_table(title, ["stream", "n", "p50", "p99"], rows)


if __name__ == "__main__":
    sys.exit(main())
