"""Cross-border kill orders: a host regulator's order at its own node → the agent's guard
at the home node refuses in that territory.

Two real node processes on loopback (``custodes serve``), GB and FR, founded on one
genesis roster that vouches for each one's regulator. GB registers N finance agents
operating in FR; each runs a real ``custodes.sdk.Guard`` against the GB node (lease,
kill-order stream, and the issuer check against the roster: ``IssuerKeys``). FR's
regulator signs a territorial suspension for each agent (all signed before the clock
starts) and POSTs it to the FR node, which forwards it to GB (outbox, node-signed
forward, Idempotency-Key); GB checks the sender and the regulator from the roster, logs
the order once and pushes it; the guard verifies the push and the regulator's signature
and calls ``on_territorial_halt("FR")``. Measured per order: from the POST leaving to
that call.

Part 1: at least 50 orders one after another (target p99 < 500 ms). Part 2: the same
agents reinstated, then a burst of 100 orders sent at once from 100 threads (target
p99 < 1 s).

    .venv/bin/python benchmarks/bench_cross_border_orders.py [--quick]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from _common import (
    ADMIN_TOKEN,
    NodeProcess,
    _wait_ready,
    cli_path,
    console,
    fmt_ms,
    free_port,
    percentile,
    print_conditions,
    print_table,
    process_cpu_seconds,
)
from custodes.client import Client
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import PartyRegulator, SignedRoster, found_roster
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.registry.models import KillOrder
from custodes.registry.service import ORDER_TYPE
from custodes.sdk import Guard, Halted, IssuerKeys, registry_lookup
from custodes.sdk.bootstrap import Authorities, bootstrap, enrol_agent, register_principal

TARGET_P99_S = 0.5
TARGET_BURST_P99_S = 1.0
_JSON = {"Content-Type": "application/json"}


@dataclass
class Party:
    code: str
    data_dir: Path
    port: int
    regulator: EnvelopeSigner

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Halts:
    """When each agent's guard first refused in FR (perf_counter), set by its hook."""

    at: dict[str, float] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def hook(self, agent: str) -> object:
        def halted(_territory: str) -> None:
            with self.cond:
                self.at[agent] = time.perf_counter()
                self.cond.notify_all()

        return halted

    def wait(self, agents: list[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(a in self.at for a in agents):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [a for a in agents if a not in self.at]
                    raise RuntimeError(f"{len(missing)} guards never halted in FR")
                self.cond.wait(left)


def _found(root: Path) -> tuple[dict[str, Party], SignedRoster, Path]:
    parties: dict[str, Party] = {}
    built = []
    for code in ("GB", "FR"):
        party = Party(code, root / code.lower(), free_port(), EnvelopeSigner.generate())
        parties[code] = party
        built.append(
            node_party(
                party.data_dir,
                code=code,
                name=code,
                status="member",
                urls=[party.url],
                origin=f"{code.lower()}.bench.custodes.example/log",
                regulators=[
                    PartyRegulator(
                        id=f"regulator:{code.lower()}",
                        name=f"{code} regulator",
                        public_key=base64.b64encode(party.regulator.public_key).decode(),
                    )
                ],
            )
        )
    votes = [roster_signer(p.data_dir) for p in parties.values()]
    roster = found_roster(
        "bench alliance", built, votes, expires=datetime.now(UTC) + timedelta(days=1)
    )
    roster_file = root / "roster.json"
    roster_file.write_bytes(orjson.dumps(roster.document))
    return parties, roster, roster_file


@contextlib.contextmanager
def _serve(party: Party, roster_file: Path) -> Iterator[NodeProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env |= {
        "CUSTODES_DATA_DIR": str(party.data_dir),
        "CUSTODES_ORIGIN": f"{party.code.lower()}.bench.custodes.example/log",
        "CUSTODES_JURISDICTION": party.code,
        "CUSTODES_ROSTER_FILE": str(roster_file),
        "CUSTODES_ADMIN_TOKEN": ADMIN_TOKEN,
        "CUSTODES_DEPLOYMENT_GATE": "false",  # its finance agents are not audited
    }
    log_path = party.data_dir / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [cli_path(), "serve", "--host", "127.0.0.1", "--port", str(party.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    node = NodeProcess(party.url, party.data_dir, process, log_path)
    try:
        _wait_ready(node)
        yield node
    finally:
        node.stop()


def _order(
    party: Party, agent: str, op: str = "suspend", lifts: str | None = None
) -> tuple[str, bytes]:
    order = KillOrder(
        op=op,  # type: ignore[arg-type]
        order_id=uuid.uuid4().hex[:24],
        agent_id=agent,
        scope="territorial",
        territory="FR",
        reason="bench: market abuse in France",
        actor="regulator:fr",
        at=datetime.now(UTC),
        lifts=lifts,
    )
    payload = order.model_dump_json(exclude_none=True).encode()
    return order.order_id, sign_envelope(ORDER_TYPE, payload, [party.regulator]).to_bytes()


ANSWERED: dict[float, float] = {}  # when each POST (by its send time) was answered


def _post(http: httpx.Client, token: str, body: bytes) -> float:
    """Send one order to the FR node; when it left (perf_counter)."""
    sent = time.perf_counter()
    answer = http.post(
        "/api/v1/kill-orders", content=body, headers=_JSON | {"Authorization": f"Bearer {token}"}
    )
    ANSWERED[sent] = time.perf_counter()
    if answer.status_code != 201:
        raise RuntimeError(f"the FR node answered {answer.status_code}: {answer.text}")
    return sent


def _guards(
    gb: Party, roster: SignedRoster, agents: list[tuple[str, EnvelopeSigner]], halts: Halts
) -> tuple[list[Guard], Client]:
    registry = Client(gb.url, timeout=10.0)
    issuers = IssuerKeys(roster, registry_lookup(registry.signers))
    key = base64.b64decode(roster.body.party("GB").entry_key)  # type: ignore[union-attr]
    guards = []
    for agent_id, signer in agents:
        guard = Guard(
            agent_id,
            signer,
            gb.url,
            key,
            safe_state=lambda: None,
            recorder=None,
            on_territorial_halt=halts.hook(agent_id),  # type: ignore[arg-type]
            issuers=issuers,
        )
        guard.start()
        guards.append(guard)
    for guard in guards:
        if not guard.wait_for_lease(60):
            raise RuntimeError("a guard got no lease")
    deadline = time.monotonic() + 60
    while not all(g.stream_connected for g in guards):
        if time.monotonic() > deadline:
            raise RuntimeError("a guard's order stream did not open")
        time.sleep(0.05)
    return guards, registry


def _sequential(
    http: httpx.Client, token: str, orders: list[tuple[str, bytes]], agents: list[str], h: Halts
) -> list[float]:
    latencies = []
    for agent, (_oid, body) in zip(agents, orders, strict=True):
        sent = _post(http, token, body)
        h.wait([agent])
        latencies.append(h.at[agent] - sent)
    return latencies


def _burst(
    http: httpx.Client, token: str, orders: list[tuple[str, bytes]], agents: list[str], h: Halts
) -> tuple[list[float], list[float], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(len(orders)) as pool:
        sent = list(pool.map(lambda o: _post(http, token, o[1]), orders))
    h.wait(agents, timeout=60)
    latencies = [h.at[a] - s for a, s in zip(agents, sent, strict=True)]
    answered = [ANSWERED[s] - s for s in sent]
    return latencies, answered, max(h.at[a] for a in agents) - started


def _reinstate(http: httpx.Client, token: str, party: Party, lifted: list[tuple[str, str]]) -> None:
    for agent, order_id in lifted:
        _post(http, token, _order(party, agent, "reinstate", order_id)[1])


def _wait_free_in_fr(guards: list[Guard], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for guard in guards:
        while guard.halted() is not None or _refuses_fr(guard):
            if time.monotonic() > deadline:
                raise RuntimeError("a guard still refuses in FR after its reinstate")
            time.sleep(0.01)


def _refuses_fr(guard: Guard) -> bool:
    try:
        guard.check("FR")
    except Halted:
        return True
    return False


def _row(name: str, latencies: list[float], target: float) -> tuple[object, ...]:
    p99 = percentile(latencies, 99)
    return (
        name,
        len(latencies),
        fmt_ms(percentile(latencies, 50)),
        fmt_ms(p99),
        fmt_ms(max(latencies)),
        f"< {fmt_ms(target)}",
        "yes" if p99 < target else "NO",
    )


def run(count: int, burst: int) -> None:
    print_conditions("bench_cross_border_orders")
    with tempfile.TemporaryDirectory(prefix="custodes-xborder-") as tmp:
        parties, roster, roster_file = _found(Path(tmp))
        gb, fr = parties["GB"], parties["FR"]
        with _serve(gb, roster_file) as gb_node, _serve(fr, roster_file) as fr_node:
            console.print("[dim]registering agents and starting their guards…[/dim]")
            home: Authorities = bootstrap(gb.url, ADMIN_TOKEN, "GB")
            with Client(fr.url) as fr_client:
                token = register_principal(
                    fr_client,
                    ADMIN_TOKEN,
                    "regulator:fr",
                    role="regulator",
                    jurisdiction="FR",
                    key=fr.regulator,
                )
            size = max(count, burst)
            agents = [
                (enrol_agent(home, key, f"bench-{i}", operating=["FR"]), key)
                for i, key in enumerate(EnvelopeSigner.generate() for _ in range(size))
            ]
            ids = [a for a, _ in agents]
            halts = Halts()
            guards, registry = _guards(gb, roster, agents, halts)
            http = httpx.Client(
                base_url=fr.url, timeout=30.0, limits=httpx.Limits(max_connections=burst)
            )
            try:
                first = [_order(fr, a) for a in ids[:count]]
                sequential = _sequential(http, token, first, ids[:count], halts)
                _reinstate(http, token, fr, [(a, o[0]) for a, o in zip(ids, first, strict=False)])
                halts.at.clear()
                _wait_free_in_fr(guards[:count])  # each guard took its reinstate
                second = [_order(fr, a) for a in ids[:burst]]
                pids = {"FR node": fr_node.process.pid, "GB node": gb_node.process.pid}
                pids["this process (guards, senders)"] = os.getpid()
                before = {k: process_cpu_seconds(p) for k, p in pids.items()}
                bursted, answered, span = _burst(http, token, second, ids[:burst], halts)
                cpu = {k: process_cpu_seconds(p) - before[k] for k, p in pids.items()}
            finally:
                http.close()
                for guard in guards:
                    guard.stop(timeout=1.0)
                registry.close()
                home.regulator.close()
                home.operator.close()
    columns = ["orders", "n", "p50", "p99", "max", "target p99", "met"]
    rows = [
        _row("one at a time (FR node → GB node → guard)", sequential, TARGET_P99_S),
        _row(f"burst of {burst} at once", bursted, TARGET_BURST_P99_S),
        _row("  of which: the FR node's 201 (home logged it)", answered, TARGET_BURST_P99_S),
    ]
    print_table(
        "Host regulator's territorial order at its own node → guard at the home refuses",
        columns,
        rows,
        caption=f"burst: all {burst} guards halted {fmt_ms(span)} after the first POST",
    )
    print_table(
        f"CPU during the burst ({fmt_ms(span)} wall, {len(os.sched_getaffinity(0))} cores)",
        ["process", "CPU s", "per order", "cores busy"],
        [(k, f"{v:.2f}", fmt_ms(v / burst), f"{v / span:.2f}") for k, v in cpu.items()],
    )


def main() -> None:
    logging.getLogger("custodes.sdk").setLevel(logging.ERROR)  # a line per halt otherwise
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 orders, a burst of 20")
    args = parser.parse_args()
    if args.quick:
        run(20, 20)
    else:
        run(60, 100)


if __name__ == "__main__":
    main()
