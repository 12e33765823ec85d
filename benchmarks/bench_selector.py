"""One kill order by selector halting many agents: from the order to the last guard refusing.

A node (``custodes serve``, its own process) holds ``--agents`` finance agents spread
over ``--processes`` operators. Each operator's agents live in one simulated fleet: a
worker process holding one ``custodes.sdk.GuardState`` per agent (each with a lease it
holds, so it acts until an order arrives) and ONE ``custodes.sdk.fleet.FleetFeed`` — one
server-sent-events stream (``?operator=``) through which the node pushes each order once,
countersigned once, listing the covered agents. A regulator then suspends every agent
with one selector order (``sector=finance, jurisdiction=ZZ``), signed before the clock
starts; each fleet applies the push and checks every covered agent (``refusal``), noting
when each one refuses. The order is lifted (one reinstate, pushed the same way) and the
next round starts once every agent acts again.

Per round: time from the order's POST being sent to each agent's refusal (p50, p99, max:
the max is the last guard refusing), the POST's own latency, the pushes each fleet
received (one per order). Leases are not what is timed here: the fleets hold them
locally (bench_killswitch measures renewals and the lease bound).

    .venv/bin/python benchmarks/bench_selector.py [--agents 10000] [--processes 4]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import multiprocessing as mp
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import httpx

from _common import (
    ADMIN_TOKEN,
    JURISDICTION,
    CpuMonitor,
    NodeProcess,
    console,
    fmt_ms,
    percentile,
    print_conditions,
    print_run_load,
    print_table,
    process_cpu_seconds,
    running_node,
)
from custodes.client import Client
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.registry.models import Contact, OperatorRecord
from custodes.registry.service import ORDER_TYPE
from custodes.sdk.bootstrap import Authorities, bootstrap, enrol_agent, register_principal
from custodes.sdk.fleet import FleetFeed
from custodes.sdk.guard import GuardState
from custodes.sdk.leases import Lease
from custodes.sdk.pushes import FleetPush

TARGET_P99_S = 0.250
_READY_TIMEOUT_S = 120.0
SELECTOR = {"sector": "finance", "jurisdiction": JURISDICTION}


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10_000, help="agents in all")
    parser.add_argument("--processes", type=int, default=4, help="fleets (one process each)")
    parser.add_argument("--rounds", type=int, default=3, help="suspend + lift rounds")
    return parser.parse_args()


# --- a fleet: one worker process, one stream, many GuardStates --------------------------


@dataclass(frozen=True)
class FleetSpec:
    url: str
    node_key: bytes
    operator: str
    agents: list[str]


class _Fleet:
    def __init__(self, spec: FleetSpec) -> None:
        now = time.time()
        self.states = {a: GuardState(a) for a in spec.agents}
        for agent_id, state in self.states.items():
            state.on_lease(
                Lease("bench", agent_id, "k", frozenset({"ZZ"}), now - 1, now + 3600, "")
            )
        self.rounds: dict[str, dict[str, Any]] = {}
        self._http = httpx.Client(timeout=30.0)
        self.feed = FleetFeed(
            spec.url,
            spec.node_key,
            spec.operator,
            self.states,
            http=self._http,
            on_applied=self._applied,
        )
        self.stop = threading.Event()

    def _applied(self, push: FleetPush, reached: list[str]) -> None:
        refused = []
        with self.feed.lock:
            for agent_id in reached:
                if self.states[agent_id].refusal("ZZ", time.time()) is not None:
                    refused.append(time.time())
        seen = self.rounds.setdefault(str(push.order["order_id"]), {"pushes": 0, "refused": []})
        seen["pushes"] += 1
        seen["refused"] += refused

    def operating(self) -> int:
        with self.feed.lock:
            return sum(s.refusal("ZZ", time.time()) is None for s in self.states.values())

    def follow(self) -> None:
        while not self.stop.is_set():
            self.feed.follow_once(self.stop)
            self.stop.wait(0.2)


def _fleet_main(spec: FleetSpec, conn: Connection) -> None:
    fleet = _Fleet(spec)
    threading.Thread(target=fleet.follow, daemon=True).start()
    while True:
        command = conn.recv()
        if command == "status":
            conn.send({"connected": fleet.feed.connected.is_set(), "operating": fleet.operating()})
        elif command == "rounds":
            conn.send(fleet.rounds)
        else:
            fleet.stop.set()
            fleet.feed.interrupt()
            conn.send(None)
            return


class FleetProcess:
    def __init__(self, spec: FleetSpec) -> None:
        self._conn, child = mp.get_context("spawn").Pipe()
        self.size = len(spec.agents)
        self.process = mp.get_context("spawn").Process(
            target=_fleet_main, args=(spec, child), daemon=True
        )
        self.process.start()

    def ask(self, command: str) -> Any:
        self._conn.send(command)
        if not self._conn.poll(60.0):
            raise RuntimeError("a fleet stopped answering")
        return self._conn.recv()


def _wait(fleets: list[FleetProcess], what: str, done: Any) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not all(done(f, f.ask("status")) for f in fleets):
        if time.monotonic() > deadline:
            raise RuntimeError(f"fleets: {what} not reached")
        time.sleep(0.05)


# --- the node side ----------------------------------------------------------------------


def _operator(http: httpx.Client, regulator: Client, name: str) -> Authorities:
    key = EnvelopeSigner.generate()
    pid = f"operator:{name}"
    token = register_principal(
        http, ADMIN_TOKEN, pid, role="operator", jurisdiction=JURISDICTION, key=key
    )
    contact = Contact(name="desk", email=f"duty@{name}.example", phone="+00 0000 0000")
    regulator.register_operator(
        OperatorRecord(
            id=pid,
            legal_name=f"{name} Ltd",
            kind="provider",
            jurisdiction=JURISDICTION,
            address="1 Street",
            contact=contact,
        )
    )
    client = Client(str(http.base_url), principal=pid, token=token, key=key, http=http)
    return Authorities(JURISDICTION, regulator, client)


def _setup(node: NodeProcess, agents: int, processes: int) -> tuple[Any, list[FleetSpec]]:
    http = httpx.Client(base_url=node.base_url, timeout=60.0)
    first = bootstrap(node.base_url, ADMIN_TOKEN, JURISDICTION, operator="fleet-0", client=http)
    operators = [first] + [
        _operator(http, first.regulator, f"fleet-{p}") for p in range(1, processes)
    ]
    plan = [(operators[i % processes], f"sel-{i}") for i in range(agents)]

    def enrol(item: tuple[Authorities, str]) -> str:
        return enrol_agent(item[0], EnvelopeSigner.generate(), item[1], sector="finance")

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(enrol, plan))
    node_key = base64.b64decode(http.get("/api/v1/signers").json()[0]["public_key"])
    specs = [
        FleetSpec(node.base_url, node_key, operators[p].operator.principal, ids[p::processes])
        for p in range(processes)
    ]
    return (http, first.regulator), specs


def _order_body(
    principal: str, key: EnvelopeSigner, op: str, lifts: str | None
) -> tuple[str, bytes]:
    order_id = secrets.token_hex(12)
    payload: dict[str, Any] = {
        "v": 1,
        "op": op,
        "order_id": order_id,
        "scope": "global",
        "reason": f"bench {op}",
        "actor": principal,
        "at": datetime.now(UTC).isoformat(),
    }
    payload |= {"lifts": lifts} if lifts else {"selector": SELECTOR}
    return order_id, sign_envelope(ORDER_TYPE, canonical_dumps(payload), [key]).to_bytes()


def main() -> int:
    args = _parse_args()
    print_conditions("bench_selector")
    with CpuMonitor() as monitor, running_node() as node:
        console.print(f"enrolling {args.agents:,} agents over {args.processes} operators…")
        began = time.perf_counter()
        (http, _regulator), specs = _setup(node, args.agents, args.processes)
        console.print(f"enrolled in {time.perf_counter() - began:.1f} s; starting the fleets…")
        desk_key = EnvelopeSigner.generate()
        desk = f"regulator:{JURISDICTION.lower()}-desk"
        token = register_principal(
            http, ADMIN_TOKEN, desk, role="regulator", jurisdiction=JURISDICTION, key=desk_key
        )
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        fleets = [FleetProcess(s) for s in specs]
        rows, all_latencies = [], []
        try:
            _wait(
                fleets,
                "every fleet subscribed",
                lambda f, s: s["connected"] and s["operating"] == f.size,
            )
            for number in range(1, args.rounds + 1):
                order_id, body = _order_body(desk, desk_key, "suspend", None)
                cpu0 = process_cpu_seconds(node.process.pid)
                sent = time.time()
                answer = http.post("/api/v1/kill-orders", content=body, headers=headers)
                accepted = time.time()
                if answer.status_code != 201:
                    raise RuntimeError(f"order refused: {answer.text}")
                _wait(fleets, "every agent refusing", lambda f, s: s["operating"] == 0)
                cpu = process_cpu_seconds(node.process.pid) - cpu0
                seen = [f.ask("rounds").get(order_id, {"pushes": 0, "refused": []}) for f in fleets]
                refused = [t - sent for s in seen for t in s["refused"]]
                all_latencies += refused
                rows.append(
                    [
                        f"round {number}",
                        f"{answer.json()['agents']:,}",
                        args.processes,
                        sum(s["pushes"] for s in seen),
                        fmt_ms(accepted - sent),
                        fmt_ms(percentile(refused, 50)),
                        fmt_ms(percentile(refused, 99)),
                        fmt_ms(max(refused)),
                        f"{cpu * 1000:.0f} ms",
                    ]
                )
                _lift_id, lift = _order_body(desk, desk_key, "reinstate", order_id)
                if (
                    http.post("/api/v1/kill-orders", content=lift, headers=headers).status_code
                    != 201
                ):
                    raise RuntimeError("the reinstate was refused")
                _wait(fleets, "every agent acting again", lambda f, s: s["operating"] == f.size)
            rows.append(
                [
                    "all rounds",
                    f"{len(all_latencies):,}",
                    args.processes,
                    "",
                    "",
                    fmt_ms(percentile(all_latencies, 50)),
                    fmt_ms(percentile(all_latencies, 99)),
                    fmt_ms(max(all_latencies)),
                    "",
                ]
            )
        finally:
            for fleet in fleets:
                with contextlib.suppress(RuntimeError, OSError):
                    fleet.ask("stop")
                fleet.process.kill()
            http.close()
    print_table(
        "One selector order halting every agent: from the order's POST to each guard refusing",
        [
            "order",
            "agents",
            "processes",
            "pushes",
            "POST",
            "p50",
            "p99",
            "max (last guard)",
            "node CPU",
        ],
        rows,
        caption=f"target p99 < {TARGET_P99_S * 1000:.0f} ms on loopback. One stream per "
        "process (an operator's fleet); 'pushes' = countersigned events received for the "
        "order, one per stream whatever the number of agents.",
    )
    print_run_load("bench_selector", monitor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
