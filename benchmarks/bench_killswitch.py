"""Time to halt: from a kill order to the agent's guard refusing, over a real node.

Part 1 (push): 1,000 simulated agents connect to ONE node (``custodes serve``, its own
process). Each is a lease (requested, signed by its key, verified, renewed at half-life)
plus a server-sent-events subscription (``GET /api/v1/kill-orders/stream?agent_id=``)
feeding a real ``custodes.sdk.GuardState``; they share one asyncio event loop in a
second process, where every agent also keeps trying an action (``GuardState.check``)
in a loop. A regulator suspends every agent, first one order at a time, then (after
reinstating them all) in bursts of 100 concurrent orders; all orders are signed before
the clock starts. Per agent: the time from the order's POST being sent, and from its
HTTP acceptance (the 201 answer arriving), to the moment its GuardState refuses
(``check`` is called as soon as the pushed order is applied), and every action that
passed after that refusal (there must be none).

Part 2 (push lost): simulated agents with no event stream, on a node whose critical
lease lives 5 s (``CUSTODES_LEASE_TTL_CRITICAL=5``), suspended at random moments of
their renewal cycles. Half can still reach the node: the renewal at half-life is
refused and the guard drops its lease then (bound TTL/2 plus a request). The other half
are cut off from the node just before their order (as in a partition): they act until
the lease they hold runs out (bound TTL plus clock skew). Measured from each order's
acceptance to the first refused action (actions every 10 ms); both bounds are given
for the default 60 s TTL too.

    .venv/bin/python benchmarks/bench_killswitch.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import multiprocessing as mp
import random
import secrets
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import httpx
import orjson

from _common import (
    ADMIN_TOKEN,
    JURISDICTION,
    CpuMonitor,
    NodeProcess,
    agent_id,
    console,
    fmt_ms,
    percentile,
    print_conditions,
    print_run_load,
    print_table,
    process_cpu_seconds,
    running_node,
)
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.registry.service import ORDER_TYPE
from custodes.sdk import GuardState, Halted, LeaseError, lease_request, verify_lease
from custodes.sdk.bootstrap import bootstrap, enrol_agent, register_principal

TARGET_P99_S = 0.25
DEFAULT_TTL_S = 60
MAX_REQUEST_SKEW_S = 30  # LeaseIssuer max_skew: how far an agent's clock may be off
TERRITORY = JURISDICTION
_JSON = {"Content-Type": "application/json"}
_STREAM = "/api/v1/kill-orders/stream"
_READY_TIMEOUT_S = 180.0
_RETRY_S = 0.5
# Below uvicorn's 5 s keep-alive timeout: httpx's default (also 5 s) races the server
# closing an idle connection, and the request sent on it meanwhile is reset.
KEEPALIVE_S = 2.0


@dataclass(frozen=True)
class Plan:
    agents: int
    burst: int
    lost_push_agents: int
    lost_push_ttl: int
    sweep_s: float


FULL = Plan(agents=1_000, burst=100, lost_push_agents=100, lost_push_ttl=5, sweep_s=0.1)
# Quick keeps the full run's burst: the target is 100 orders sent at once.
QUICK = Plan(agents=200, burst=100, lost_push_agents=40, lost_push_ttl=5, sweep_s=0.05)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 agents instead of 1,000")
    parser.add_argument("--burst", type=int, help="orders sent at once (default 100)")
    parser.add_argument(
        "--push-only", action="store_true", help="skip the lost-push part (lease bound)"
    )
    return parser.parse_args()


# --- the simulated agents: one asyncio loop in a worker process -------------------------


@dataclass
class SimAgent:
    """One agent: its key, its GuardState, and what happened to it."""

    agent_id: str
    signer: EnvelopeSigner
    state: GuardState
    renew_now: asyncio.Event = field(default_factory=asyncio.Event)
    connected: bool = False
    operating: bool = False
    halted_since: float | None = None  # when a pushed order made check refuse
    pushed: dict[str, dict[str, Any]] = field(default_factory=dict)  # order_id -> timings
    sweep_halts: list[float] = field(default_factory=list)  # halt episodes the loop saw
    actions: int = 0
    after_halt: list[float] = field(default_factory=list)  # actions that passed while halted
    leases: int = 0
    lease_refusals: int = 0
    partitioned: bool = False  # renewals cannot reach the node (as if it were down)

    def result(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "pushed": self.pushed,
            "sweep_halts": self.sweep_halts,
            "actions": self.actions,
            "after_halt": self.after_halt,
            "leases": self.leases,
            "lease_refusals": self.lease_refusals,
        }


async def _renew_once(http: httpx.AsyncClient, agent: SimAgent, node_key: bytes) -> float:
    """Ask for a lease; hold it (or drop the lease held on a refusal). Seconds to wait."""
    if agent.partitioned:
        return _RETRY_S  # what a connection failure leaves: the lease held runs out
    horizon = agent.state.horizon
    body = lease_request(agent.signer, agent.agent_id, time.time()).to_bytes()
    response = await http.post("/api/v1/leases", content=body, headers=_JSON)
    if response.status_code == 403:  # suspended: the guard drops its lease, as Guard does
        agent.state.drop_lease()
        agent.lease_refusals += 1
        return _RETRY_S * 4
    if response.status_code != 201:
        return _RETRY_S
    lease = verify_lease(
        response.content,
        node_public_key=node_key,
        agent_id=agent.agent_id,
        keyid=agent.signer.keyid,
        now=time.time(),
    )
    agent.state.on_lease(lease, horizon=horizon)
    agent.leases += 1
    return lease.nbf + 0.5 * lease.lifetime - time.time()


async def _keep_lease(
    http: httpx.AsyncClient, agent: SimAgent, node_key: bytes, gate: asyncio.Semaphore
) -> None:
    while True:
        agent.renew_now.clear()
        try:
            async with gate:
                wait = await _renew_once(http, agent, node_key)
        except (httpx.HTTPError, LeaseError):
            wait = _RETRY_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(agent.renew_now.wait(), timeout=max(wait, 0.05))


def _apply(agent: SimAgent, data: str) -> None:
    """An ``order`` event: apply it to the GuardState, then check at once."""
    received = time.time()
    message = orjson.loads(data)
    applied = agent.state.on_order(message["order"], message["index"])
    if applied is None or applied.order_id in agent.pushed:
        return  # not ours, or a replay of the active orders on reconnection
    timings: dict[str, Any] = {"op": applied.op, "received": received, "refused": None}
    agent.pushed[applied.order_id] = timings
    if applied.op == "reinstate":
        agent.halted_since = None
        agent.renew_now.set()  # as Guard does: a fresh lease at once
        return
    try:
        agent.state.check(TERRITORY, time.time())
    except Halted:
        timings["refused"] = time.time()
        if agent.halted_since is None:
            agent.halted_since = timings["refused"]


async def _follow(http: httpx.AsyncClient, agent: SimAgent) -> None:
    params = {"agent_id": agent.agent_id}
    while True:
        try:
            async with http.stream("GET", _STREAM, params=params) as response:
                event, data = "message", []
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        agent.connected = True
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif not line and data:
                        if event == "order":
                            _apply(agent, "\n".join(data))
                        event, data = "message", []
        except httpx.HTTPError:
            pass
        agent.connected = False
        await asyncio.sleep(_RETRY_S)


def _sweep_once(agents: Sequence[SimAgent]) -> None:
    now = time.time()
    for agent in agents:
        try:
            agent.state.check(TERRITORY, now)
        except Halted:
            if agent.operating:
                agent.sweep_halts.append(now)
            agent.operating = False
            continue
        agent.operating = True
        agent.actions += 1
        if agent.halted_since is not None:
            agent.after_halt.append(now)


async def _sweep(agents: Sequence[SimAgent], pace: float) -> None:
    while True:
        _sweep_once(agents)
        await asyncio.sleep(pace)


def _status(agents: Sequence[SimAgent]) -> dict[str, int]:
    now = time.time()
    return {
        "leased": sum(a.state.lease is not None for a in agents),
        "connected": sum(a.connected for a in agents),
        "operating": sum(a.state.refusal(TERRITORY, now) is None for a in agents),
    }


async def _serve_commands(conn: Connection, agents: Sequence[SimAgent]) -> None:
    while True:
        while conn.poll():
            command = conn.recv()
            if command == "stop":
                return
            if isinstance(command, tuple) and command[0] == "partition":
                cut = set(command[1])
                for agent in agents:
                    agent.partitioned |= agent.agent_id in cut
            conn.send(_status(agents))
        await asyncio.sleep(0.02)


@dataclass(frozen=True)
class FleetSpec:
    """What the worker process needs (pickled across the process boundary)."""

    url: str
    node_key: bytes
    seeds: list[tuple[str, bytes]]  # (agent id, Ed25519 seed)
    push: bool  # subscribe to the kill-order stream
    pace: float  # seconds between two actions of each agent


async def _run_agents(spec: FleetSpec, conn: Connection) -> None:
    agents = [SimAgent(a, EnvelopeSigner.from_seed(s), GuardState(a)) for a, s in spec.seeds]
    limits = httpx.Limits(
        max_connections=len(agents) + 64, max_keepalive_connections=64, keepalive_expiry=KEEPALIVE_S
    )
    timeout = httpx.Timeout(30.0, read=60.0)
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=spec.url, limits=limits, timeout=timeout) as http:
        tasks = [asyncio.create_task(_keep_lease(http, a, spec.node_key, gate)) for a in agents]
        if spec.push:
            tasks += [asyncio.create_task(_follow(http, a)) for a in agents]
        tasks.append(asyncio.create_task(_sweep(agents, spec.pace)))
        await _serve_commands(conn, agents)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    conn.send([a.result() for a in agents])


def _agents_main(spec: FleetSpec, conn: Connection) -> None:
    asyncio.run(_run_agents(spec, conn))


class AgentFleet:
    """The worker process running the simulated agents, and its command pipe."""

    def __init__(self, spec: FleetSpec) -> None:
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_agents_main, args=(spec, child), daemon=True)
        self._process.start()

    def status(self) -> dict[str, int]:
        self._conn.send("status")
        if not self._conn.poll(30.0):
            raise RuntimeError("the simulated agents stopped answering")
        status: dict[str, int] = self._conn.recv()
        return status

    def partition(self, agent_ids: Sequence[str]) -> None:
        """From now on these agents' lease renewals fail as if the node were unreachable."""
        self._conn.send(("partition", list(agent_ids)))
        self._conn.recv()

    def wait_for(self, what: str, done: Any, timeout: float = _READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not done(status := self.status()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"simulated agents: {what} not reached: {status}")
            time.sleep(0.1)

    def stop(self) -> list[dict[str, Any]]:
        self._conn.send("stop")
        if not self._conn.poll(60.0):
            raise RuntimeError("the simulated agents did not report")
        results: list[dict[str, Any]] = self._conn.recv()
        self._process.join(10.0)
        return results

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(10.0)


# --- the node side: agents, a regulator, pre-signed orders ----------------------------


@dataclass(frozen=True)
class Regulator:
    principal: str
    token: str
    key: EnvelopeSigner

    def order(self, op: str, agent: str, lifts: str | None = None) -> tuple[str, bytes]:
        """A signed kill order (canonical JSON body) and its id, built before any timing."""
        order_id = secrets.token_hex(12)
        payload: dict[str, Any] = {
            "v": 1,
            "op": op,
            "order_id": order_id,
            "agent_id": agent,
            "scope": "global",
            "reason": f"benchmark {op}",
            "actor": self.principal,
            "at": datetime.now(UTC).isoformat(),
        }
        if lifts is not None:
            payload["lifts"] = lifts
        envelope = sign_envelope(ORDER_TYPE, canonical_dumps(payload), [self.key])
        return order_id, envelope.to_bytes()

    @property
    def headers(self) -> dict[str, str]:
        return _JSON | {"Authorization": f"Bearer {self.token}"}


def _seed(i: int) -> bytes:
    return hashlib.sha256(f"killswitch-agent-{i}".encode()).digest()


def _setup(node: NodeProcess, count: int) -> tuple[Regulator, bytes, list[tuple[str, bytes]]]:
    """A home regulator with a known key, and ``count`` enrolled finance agents."""
    url = node.base_url
    with httpx.Client(base_url=url, timeout=30.0) as http:
        authorities = bootstrap(url, ADMIN_TOKEN, JURISDICTION, operator="bench", client=http)
        key = EnvelopeSigner.generate()
        principal = f"regulator:{JURISDICTION.lower()}-desk"
        token = register_principal(
            http, ADMIN_TOKEN, principal, role="regulator", jurisdiction=JURISDICTION, key=key
        )
        seeds = [(agent_id(f"ks-{i}"), _seed(i)) for i in range(count)]

        def enrol(item: tuple[str, bytes]) -> None:
            signer = EnvelopeSigner.from_seed(item[1])
            enrol_agent(authorities, signer, item[0].rsplit(":", 1)[1], sector="finance")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(enrol, seeds))
        signers = http.get("/api/v1/signers").json()
    node_key = base64.b64decode(signers[0]["public_key"])
    return Regulator(principal, token, key), node_key, seeds


@dataclass
class Sent:
    order_id: str
    agent_id: str
    sent: float
    accepted: float


def _post_one_by_one(
    url: str, regulator: Regulator, orders: list[tuple[str, str, bytes]]
) -> list[Sent]:
    done = []
    with httpx.Client(base_url=url, timeout=30.0) as http:
        for agent, order_id, body in orders:
            sent = time.time()
            response = http.post("/api/v1/kill-orders", content=body, headers=regulator.headers)
            accepted = time.time()
            if response.status_code != 201:
                raise RuntimeError(f"kill order refused: {response.status_code} {response.text}")
            done.append(Sent(order_id, agent, sent, accepted))
    return done


async def _post_burst(
    http: httpx.AsyncClient, regulator: Regulator, orders: list[tuple[str, str, bytes]]
) -> list[Sent]:
    async def one(agent: str, order_id: str, body: bytes) -> Sent:
        sent = time.time()
        response = await http.post("/api/v1/kill-orders", content=body, headers=regulator.headers)
        accepted = time.time()
        if response.status_code != 201:
            raise RuntimeError(f"kill order refused: {response.status_code} {response.text}")
        return Sent(order_id, agent, sent, accepted)

    return list(await asyncio.gather(*(one(*o) for o in orders)))


def _post_in_bursts(
    url: str, regulator: Regulator, orders: list[tuple[str, str, bytes]], burst: int
) -> tuple[list[Sent], float]:
    """Send ``burst`` orders at once, wait for them all, pause, repeat.

    Returns what was sent and the time spent inside bursts (the pauses left out).
    """

    async def run() -> tuple[list[Sent], float]:
        limits = httpx.Limits(
            max_connections=burst, max_keepalive_connections=burst, keepalive_expiry=KEEPALIVE_S
        )
        done: list[Sent] = []
        busy = 0.0
        async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:
            for start in range(0, len(orders), burst):
                began = time.perf_counter()
                done += await _post_burst(http, regulator, orders[start : start + burst])
                busy += time.perf_counter() - began
                await asyncio.sleep(0.5)  # the pushes of one burst settle before the next
        return done, busy

    return asyncio.run(run())


# --- part 1: push ------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    sent: list[Sent]
    seconds: float  # spent sending orders (pauses between bursts left out)
    server_cpu_s: float


def _phase(
    name: str,
    node: NodeProcess,
    fleet: AgentFleet,
    regulator: Regulator,
    ids: list[str],
    *,
    burst: int | None,
) -> Phase:
    orders = [(a, *regulator.order("suspend", a)) for a in ids]  # signed before the clock
    cpu0 = process_cpu_seconds(node.process.pid)
    if burst is None:
        began = time.perf_counter()
        sent = _post_one_by_one(node.base_url, regulator, orders)
        seconds = time.perf_counter() - began
    else:
        sent, seconds = _post_in_bursts(node.base_url, regulator, orders, burst)
    cpu = process_cpu_seconds(node.process.pid) - cpu0
    fleet.wait_for("every agent halted", lambda s: s["operating"] == 0, timeout=60.0)
    time.sleep(1.0)  # the agents keep trying to act
    return Phase(name, sent, seconds, cpu)


def _push_run(plan: Plan) -> tuple[list[Phase], list[dict[str, Any]]]:
    with running_node() as node:
        console.print(f"enrolling {plan.agents:,} finance agents…")
        regulator, node_key, seeds = _setup(node, plan.agents)
        ids = [a for a, _ in seeds]
        fleet = AgentFleet(FleetSpec(node.base_url, node_key, seeds, True, plan.sweep_s))
        try:
            fleet.wait_for(
                "every agent leased and subscribed",
                lambda s: s["operating"] == plan.agents and s["connected"] == plan.agents,
            )
            console.print("all leased and subscribed; suspending them one order at a time…")
            phases = [_phase("one at a time", node, fleet, regulator, ids, burst=None)]
            console.print("reinstating every agent…")
            lifts = [
                (s.agent_id, *regulator.order("reinstate", s.agent_id, lifts=s.order_id))
                for s in phases[0].sent
            ]
            _post_in_bursts(node.base_url, regulator, lifts, 20)
            fleet.wait_for("every agent operating again", lambda s: s["operating"] == plan.agents)
            console.print(f"suspending them in bursts of {plan.burst} concurrent orders…")
            phases.append(
                _phase(f"bursts of {plan.burst}", node, fleet, regulator, ids, burst=plan.burst)
            )
            results = fleet.stop()
        finally:
            fleet.kill()
    return phases, results


@dataclass
class HaltTimes:
    from_sent: list[float] = field(default_factory=list)
    from_accepted: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)
    not_pushed: int = 0


def _halt_times(phase: Phase, by_agent: dict[str, dict[str, Any]]) -> HaltTimes:
    times = HaltTimes()
    for s in phase.sent:
        times.post.append(s.accepted - s.sent)
        timing = by_agent[s.agent_id]["pushed"].get(s.order_id)
        if timing is None or timing["refused"] is None:
            times.not_pushed += 1
            continue
        times.from_sent.append(timing["refused"] - s.sent)
        times.from_accepted.append(timing["refused"] - s.accepted)
    return times


def _spread(values: list[float]) -> list[str]:
    return [
        fmt_ms(percentile(values, 50)),
        fmt_ms(percentile(values, 99)),
        fmt_ms(max(values, default=float("nan"))),
    ]


def _push_row(phase: Phase, times: HaltTimes) -> list[object]:
    halted = f"{len(times.from_sent):,}"
    if times.not_pushed:
        halted += f" ({times.not_pushed} missed)"
    return [
        phase.name,
        f"{len(phase.sent):,}",
        halted,
        f"{fmt_ms(percentile(times.post, 50))} / {fmt_ms(percentile(times.post, 99))}",
        *_spread(times.from_sent),
        *_spread(times.from_accepted),
        f"{len(phase.sent) / phase.seconds:,.0f}/s",
        f"{phase.server_cpu_s / len(phase.sent) * 1e3:.2f} ms",
    ]


# --- part 2: the push lost: the lease decides --------------------------------------------


def _lost_push_run(plan: Plan) -> tuple[dict[str, list[float]], int]:
    """Agents with no event stream; half of them are also cut off from lease renewal
    just before their order is sent (the node unreachable from them from then on).

    Orders go out at random moments over two lease lifetimes, so they fall at every
    point of the agents' renewal cycles. Returns, per case, the time from each order's
    acceptance to the first refused action, and the actions that passed after a halt.
    """
    ttl = plan.lost_push_ttl
    with running_node(extra_env={"CUSTODES_LEASE_TTL_CRITICAL": str(ttl)}) as node:
        regulator, node_key, seeds = _setup(node, 2 * plan.lost_push_agents)
        cut = {a for a, _ in seeds[plan.lost_push_agents :]}
        fleet = AgentFleet(FleetSpec(node.base_url, node_key, seeds, False, 0.01))
        try:
            fleet.wait_for("every agent leased", lambda s: s["operating"] == len(seeds))
            time.sleep(ttl)  # each agent renews at its own moment of the cycle
            orders = [(a, *regulator.order("suspend", a)) for a, _ in seeds]
            random.Random(7).shuffle(orders)
            sent = _post_spread(node.base_url, regulator, orders, 2.0 * ttl, fleet=fleet, cut=cut)
            fleet.wait_for("every agent halted", lambda s: s["operating"] == 0, ttl + 10.0)
            time.sleep(0.5)
            results = fleet.stop()
        finally:
            fleet.kill()
    by_agent = {r["agent_id"]: r for r in results}
    halts: dict[str, list[float]] = {"refused": [], "unreachable": []}
    late = 0
    for s in sent:
        result = by_agent[s.agent_id]
        after = [t for t in result["sweep_halts"] if t >= s.sent]
        if after:
            halts["unreachable" if s.agent_id in cut else "refused"].append(after[0] - s.accepted)
            late += sum(1 for t in result["after_halt"] if t >= after[0])
    return halts, late


def _post_spread(
    url: str,
    regulator: Regulator,
    orders: list[tuple[str, str, bytes]],
    over: float,
    *,
    fleet: AgentFleet,
    cut: set[str],
) -> list[Sent]:
    """Send the orders one by one at random moments over ``over`` seconds; just before
    an order for an agent in ``cut``, cut that agent off from lease renewal."""
    rng = random.Random(11)
    sent = []
    with httpx.Client(base_url=url, timeout=30.0) as http:
        for agent, order_id, body in orders:
            time.sleep(rng.uniform(0, 2 * over / len(orders)))
            if agent in cut:
                fleet.partition([agent])
            began = time.time()
            response = http.post("/api/v1/kill-orders", content=body, headers=regulator.headers)
            if response.status_code != 201:
                raise RuntimeError(f"kill order refused: {response.text}")
            sent.append(Sent(order_id, agent, began, time.time()))
    return sent


def _lost_push_rows(
    plan: Plan, halts: dict[str, list[float]], push: HaltTimes
) -> list[list[object]]:
    ttl, default = plan.lost_push_ttl, DEFAULT_TTL_S
    measured = [
        ("push delivered (part 1, one at a time)", push.from_accepted, "push delivery"),
        (
            f"push lost, node refuses renewal, TTL {ttl} s",
            halts["refused"],
            f"TTL/2 = {ttl / 2:g} s + one request",
        ),
        (
            f"push lost, node unreachable, TTL {ttl} s",
            halts["unreachable"],
            f"TTL + skew = {ttl} s + 0 here",
        ),
    ]
    rows: list[list[object]] = [
        [name, f"{len(values):,}", *_spread(values), bound] for name, values, bound in measured
    ]
    rows.append(
        [
            f"push lost, node refuses renewal, TTL {default} s",
            "bound",
            "",
            "",
            "",
            f"{default / 2:g} s + one request",
        ]
    )
    rows.append(
        [
            f"push lost, node unreachable, TTL {default} s",
            "bound",
            "",
            "",
            "",
            f"{default} s + skew (≤ {default + MAX_REQUEST_SKEW_S} s)",
        ]
    )
    return rows


def main() -> int:
    args = _parse_args()
    plan = QUICK if args.quick else FULL
    if args.burst is not None:
        plan = replace(plan, burst=args.burst)
    print_conditions("bench_killswitch")
    with CpuMonitor() as monitor:
        phases, results = _push_run(plan)
        halts: dict[str, list[float]] = {}
        late = 0
        if not args.push_only:
            console.print(
                f"push lost: {2 * plan.lost_push_agents} agents, TTL {plan.lost_push_ttl} s…"
            )
            halts, late = _lost_push_run(plan)
    by_agent = {r["agent_id"]: r for r in results}
    times = [_halt_times(phase, by_agent) for phase in phases]
    after_halt = sum(len(r["after_halt"]) for r in results)
    actions = sum(r["actions"] for r in results)
    print_table(
        f"Time to halt by push: {plan.agents:,} agents subscribed to one node, "
        "from each kill order to its agent's GuardState refusing",
        [
            "orders",
            "sent",
            "halted",
            "POST p50 / p99",
            "from send p50",
            "p99",
            "max",
            "from answer p50",
            "p99",
            "max",
            "orders/s",
            "node CPU/order",
        ],
        [_push_row(phase, t) for phase, t in zip(phases, times, strict=True)],
        caption=f"target p99 < {TARGET_P99_S * 1000:.0f} ms on loopback. 'from answer' starts "
        "when the client has the node's 201; negative = the push arrived first. "
        f"Actions tried: {actions:,}; passed after their agent's halt: {after_halt}.",
    )
    if args.push_only:
        print_run_load("bench_killswitch", monitor)
        return 0
    print_table(
        "Worst case: the push is lost and the lease decides (time from the order's 201)",
        ["case", "agents", "p50", "p99", "max", "bound"],
        _lost_push_rows(plan, halts, times[0]),
        caption=f"Actions every 10 ms (add up to 10 ms of sampling); passed after a halt: "
        f"{late}. Renewal at half-life; a refused renewal drops the lease at once. The node "
        f"accepts lease requests up to {MAX_REQUEST_SKEW_S} s off its clock, so an agent "
        "clock that far behind keeps acting that much longer on an unreachable node.",
    )
    print_run_load("bench_killswitch", monitor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
