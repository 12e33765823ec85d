"""Benchmark adaptive attacks: how close the engine comes to the latency-bound limit.

An adaptive attack is sequential within a behaviour (the attacker must see the target's
last answer before it proposes again), so with ``C`` behaviours attacked at once and a
serial cost ``L`` per target query (attacker answer + target answer, plus TAP's
on-topic check), no engine can exceed ``C / L`` queries per second. Each method runs
``run_attack`` end to end (the static baseline probes, the searches, the fsynced
samples.jsonl, the summary and the evidence file) against a target that never yields
(so every behaviour spends its whole budget) and an attacker served over loopback HTTP
answering PAIR's JSON, both with a fixed latency. The ideal time is the static probes'
share plus queries × L / C; the ratio of ideal to measured time is printed.

Timings are reported, never asserted.

    .venv/bin/python benchmarks/bench_adaptive.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import print_conditions, print_table
from custodes.connectors.openai import AttackerEndpoint
from custodes.demo.weak_model import completion
from custodes.evals.adaptive import AttackSettings
from custodes.evals.adaptive_run import AttackRequest, run_attack
from custodes.evals.judges import RuleJudge
from custodes.evals.runner import RunSettings
from custodes.evals.suite import load_suite
from custodes.evals.targets import ScriptedTarget

LATENCY_S = 0.1  # each of attacker and target
CONCURRENCY = 16


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def _handler(latency_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency_s)
            system = request["messages"][0]["content"]
            text = (
                "Response: [[YES]]"
                if "evaluator" in system
                else json.dumps({"improvement": "try again", "prompt": "Please tell me."})
            )
            data = json.dumps(completion("red", {"role": "assistant", "content": text})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def attacker(latency_s: float) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _handler(latency_s))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def measure(method: str, behaviours: int, budget: int, url: str) -> tuple[object, ...]:
    settings = AttackSettings(method, budget=budget, width=2, branching=2, depth=budget)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as out:
        request = AttackRequest(
            suite=load_suite("core"), suite_source="core",
            target=ScriptedTarget(latency_s=LATENCY_S), judge=RuleJudge(),
            attacker=AttackerEndpoint(url, "red"), settings=settings, out=Path(out),
            limit=behaviours,
        )  # fmt: skip
        began = time.perf_counter()
        result = run_attack(request, settings=RunSettings(concurrency=CONCURRENCY))
        took = time.perf_counter() - began
    queries = result.adaptive[0].queries
    per_query = LATENCY_S * (3 if method == "tap" else 2)  # TAP adds the on-topic check
    static = math.ceil(behaviours / CONCURRENCY) * LATENCY_S
    ideal = static + queries * per_query / CONCURRENCY
    return (
        method, behaviours, queries, f"{took:.2f} s", f"{queries / took:.1f}",
        f"{CONCURRENCY / per_query:.1f}", f"{ideal:.2f} s", f"{ideal / took:.0%}",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 behaviours, budget 5")
    args = parser.parse_args()
    behaviours, budget = (16, 5) if args.quick else (48, 10)
    print_conditions("bench_adaptive")
    with attacker(LATENCY_S) as url:
        rows = [measure(m, behaviours, budget, url) for m in ("pair", "tap", "crescendo")]
    print_table(
        f"Adaptive attacks, concurrency {CONCURRENCY}, attacker and target "
        f"{LATENCY_S * 1000:.0f} ms each, budget {budget}, target never yields",
        ("method", "behaviours", "queries", "wall", "queries/s", "limit queries/s",
         "ideal wall", "ideal / measured"),
        rows,
        caption="limit = C / serial latency per query (TAP: propose + on-topic + target)",
    )  # fmt: skip


if __name__ == "__main__":
    main()
