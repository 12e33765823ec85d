"""The registry under load: lease renewals, look-ups and searches, and replaying it.

A registry of 100,000 entries is built in-process and cached under benchmarks/results/
(keyed by a version string, the package version and the schema head): a GB node's
regulator and operator (principals, ``RegistryService.register_principal``), the
operator's record (``submit_change``), then 50,000 ``agent.register`` and 45,000
``agent.update`` changes signed by the operator's key and 5,000 kill orders signed by
the regulator's (half global, half territorial), all real DSSE envelopes. The bulk is
sequenced 1,000 entries per transaction with the registry's own projection functions
(``apply_change``, ``apply_order``) — what ``submit_change`` runs, minus the authority
check and one transaction per change; 1,000 of the updates go through ``submit_change``
itself to time the live path. Then:

* replay: ``custodes.registry.rebuild(node.store)`` (replay every entry into a scratch
  database and compare every projection table), and ``replay`` alone; entries/s;
* ``custodes serve`` on a copy of that node: lease renewals per second (``POST
  /api/v1/leases``, requests signed by the agents' keys before the clock starts) from
  1, 16 and 64 concurrent clients; then agent look-ups (``GET
  /api/v1/registry/agents/{id}``, random ids, public and with a regulator's token) and
  searches (``GET /api/v1/registry/agents?...``, filters and pagination).

    .venv/bin/python benchmarks/bench_registry.py [--quick] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import TypeAdapter
from sqlalchemy import Connection

from _common import (
    ADMIN_TOKEN,
    CpuMonitor,
    NodeProcess,
    built_once,
    cache_dir,
    console,
    fmt_ms,
    fmt_rate,
    percentile,
    print_conditions,
    print_run_load,
    print_table,
    process_cpu_seconds,
    reading_node,
    running_node,
)
from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope, sign_envelope
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.store import SequencedEntry
from custodes.node import Node
from custodes.registry import rebuild
from custodes.registry.models import (
    AgentChanges,
    AgentRecord,
    AgentRegister,
    AgentUpdate,
    Contact,
    KillOrder,
    OperatorRecord,
    OperatorRegister,
    PrincipalRecord,
    RegistryChange,
    Skill,
)
from custodes.registry.principals import DEFAULT_SCOPES, Principal
from custodes.registry.private import request_body, seal_change
from custodes.registry.projection import apply_change, apply_order
from custodes.registry.rebuild import replay
from custodes.registry.service import ORDER_TYPE, REGISTRY_TYPE
from custodes.sdk.leases import lease_request
from custodes.store.db import open_engine, upgrade

# Bump when the entry format, the schema or the build procedure changes: a cached
# registry built by older code is then rebuilt instead of measured.
CACHE_VERSION = "v1"
ORIGIN = "bench.custodes.example/log"  # what running_node serves
HOME = "GB"
REGULATOR, OPERATOR = "regulator:gb", "operator:bench"
SECTORS = ("finance", "energy", "logistics", "health", "retail")
PLACES = ("FR", "DE", "CA", "IE", "NL")
SKILLS = ("trading", "settlement", "dispatch", "triage", "pricing", "forecasting")
NONCE_MEMORY = 100_000  # custodes.killswitch.leases._NONCES
REQUEST_WINDOW_S = 60  # a lease request is accepted while its "at" is within ±30 s
_BULK = 1_000  # entries per transaction when building
_SIGN_CHUNK = 10_000
_JSON = {"Content-Type": "application/json"}
_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    agents: int
    updates: int
    orders: int
    live_updates: int
    lease_requests: int
    lease_clients: tuple[int, ...]
    lookups: int
    lookup_clients: tuple[int, ...]

    @property
    def size(self) -> int:
        return self.agents + self.updates + self.orders


FULL = Plan(50_000, 45_000, 5_000, 1_000, 3_000, (1, 16, 64), 2_000, (1, 16))
QUICK = Plan(5_000, 4_500, 500, 200, 600, (1, 16, 64), 300, (1, 16))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 10,000-entry registry")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached registry")
    return parser.parse_args()


# --- keys and signed changes (built in worker processes) -------------------------------


def _seed(name: str) -> bytes:
    return hashlib.sha256(f"bench-registry:{name}".encode()).digest()


def _agent_id(i: int) -> str:
    return f"urn:custodes:{HOME.lower()}:agent:reg-{i}"


def _agent_record(i: int) -> AgentRecord:
    rng = random.Random(i)
    return AgentRecord(
        id=_agent_id(i),
        name=f"reg-{i}",
        version="1.0",
        operator=OPERATOR,
        home_jurisdiction=HOME,
        operating_jurisdictions=tuple(sorted(rng.sample(PLACES, rng.randint(0, 3)))),
        sector=SECTORS[i % len(SECTORS)],
        risk_tier=rng.choice(("minimal", "limited", "high")),
        autonomy_level=rng.randint(1, 4),
        intended_purpose=f"synthetic agent {i} for the registry benchmark",
        skills=tuple(Skill(id=s, name=s.title()) for s in rng.sample(SKILLS, rng.randint(1, 2))),
    )


def _change(kind: str, i: int, n_agents: int) -> tuple[str, bytes]:
    """Payload type and payload of the ``i``-th change of ``kind``."""
    at = _BASE_TIME + timedelta(milliseconds=i)
    if kind == "register":
        key = EnvelopeSigner.from_seed(_seed(f"agent-{i}")).public_key
        change: Any = AgentRegister(
            actor=OPERATOR, at=at, agent=_agent_record(i), keys=(base64.b64encode(key).decode(),)
        )
        return REGISTRY_TYPE, change.model_dump_json(exclude_none=True).encode()
    if kind == "update":
        changes = AgentChanges(version=f"1.{i // n_agents + 1}", autonomy_level=1 + i % 4)
        change = AgentUpdate(
            actor=OPERATOR, at=at, agent_id=_agent_id(i % n_agents), changes=changes
        )
        return REGISTRY_TYPE, change.model_dump_json(exclude_none=True).encode()
    territory = "FR" if i % 2 else None
    order = KillOrder(
        op="suspend",
        order_id=f"bench-order-{i:08d}",
        agent_id=_agent_id(_ordered_agent(i, n_agents)),
        scope="territorial" if territory else "global",
        territory=territory,
        reason="benchmark suspension",
        actor=REGULATOR,
        at=at,
    )
    return ORDER_TYPE, order.model_dump_json(exclude_none=True).encode()


def _ordered_agent(i: int, n_agents: int) -> int:
    """Orders hit every agent whose number is 7 mod 10 (never the first ones: those lease)."""
    return (i * 10 + 7) % n_agents


def _sign_range(kind: str, start: int, count: int, n_agents: int) -> list[bytes]:
    """Canonical envelopes of ``count`` changes of ``kind`` (runs in a worker)."""
    signer = EnvelopeSigner.from_seed(_seed("regulator" if kind == "order" else "operator"))
    out = []
    for i in range(start, start + count):
        payload_type, payload = _change(kind, i, n_agents)
        out.append(sign_envelope(payload_type, payload, [signer]).to_bytes())
    return out


def _signed(kind: str, count: int, n_agents: int) -> Iterator[list[bytes]]:
    """Signed changes of ``kind``, ``_SIGN_CHUNK`` at a time, signed on every CPU."""
    workers = max(1, len(os.sched_getaffinity(0)))
    step = max(1, _SIGN_CHUNK // workers)
    with ProcessPoolExecutor(workers) as pool:
        for chunk in range(0, count, _SIGN_CHUNK):
            starts = range(chunk, min(count, chunk + _SIGN_CHUNK), step)
            sizes = [min(step, min(count, chunk + _SIGN_CHUNK) - s) for s in starts]
            parts = pool.map(
                _sign_range, [kind] * len(sizes), starts, sizes, [n_agents] * len(sizes)
            )
            yield [e for part in parts for e in part]


# --- building (or re-using) the registry ------------------------------------------------

_CHANGE: TypeAdapter[Any] = TypeAdapter(RegistryChange)


def _cache_dir(size: int) -> Path:
    return cache_dir("registry", CACHE_VERSION, size)


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url=None, origin=ORIGIN, jurisdiction=HOME)


def _principal(node: Node, pid: str, role: str) -> Principal:
    key = EnvelopeSigner.from_seed(_seed(role))
    public = base64.b64encode(key.public_key).decode()
    node.registry.register_principal(
        PrincipalRecord(id=pid, role=role, jurisdiction=HOME, name=pid, public_key=public)
    )
    found = node.tokens.principal(pid)
    return Principal(**{**found.__dict__, "scopes": frozenset(DEFAULT_SCOPES[role])})


def _sequence_bulk(node: Node, envelopes: list[bytes]) -> None:
    """Sequence signed registry changes, ``_BULK`` per transaction, projecting each."""
    for at in range(0, len(envelopes), _BULK):
        chunk = envelopes[at : at + _BULK]
        parsed = [parse_envelope(orjson.loads(data)) for data in chunk]
        changes = [
            KillOrder.model_validate_json(e.payload)
            if e.payload_type == ORDER_TYPE
            else _CHANGE.validate_json(e.payload)
            for e in parsed
        ]

        def project(conn: Connection, first: int, changes: list[Any] = changes) -> None:
            for offset, change in enumerate(changes):
                apply = apply_order if isinstance(change, KillOrder) else apply_change
                apply(conn, first + offset, change)

        batch = [
            SequencedEntry(d, leaf_hash(d), e.payload_type)
            for d, e in zip(chunk, parsed, strict=True)
        ]
        node.store.sequence(batch, project)


def _live_updates(node: Node, operator: Principal, plan: Plan) -> float:
    """``plan.live_updates`` changes through ``submit_change``; seconds taken."""
    key = EnvelopeSigner.from_seed(_seed("operator"))
    bodies = []
    for i in range(plan.live_updates):
        change = AgentUpdate(
            actor=OPERATOR,
            at=datetime.now(UTC),
            agent_id=_agent_id(i),
            changes=AgentChanges(intended_purpose=f"live update {i}"),
        )
        payload = change.model_dump_json(exclude_none=True).encode()
        bodies.append(sign_envelope(REGISTRY_TYPE, payload, [key]).to_json())
    began = time.perf_counter()
    for body in bodies:
        node.registry.submit_change(body, operator)
    return time.perf_counter() - began


def _build(target: Path, plan: Plan) -> dict[str, Any]:
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    timings = {"sign": 0.0, "sequence": 0.0, "live": 0.0, "integrate": 0.0}
    node = Node(_settings(building))
    try:
        node.log.sequencer.start()
        node.register_signer(f"node:{ORIGIN}", node.entry_signer.public_key)
        regulator = _principal(node, REGULATOR, "regulator")
        operator = _principal(node, OPERATOR, "operator")
        record = OperatorRecord(
            id=OPERATOR,
            legal_name="Bench Ltd",
            kind="provider-deployer",
            jurisdiction=HOME,
            address="1 Bench Street",
            contact=Contact(name="duty desk", email="duty@bench.example", phone="+00 0000"),
        )
        change = OperatorRegister(actor=REGULATOR, at=_BASE_TIME, operator=record)
        signer = EnvelopeSigner.from_seed(_seed("regulator"))
        sealed, opening = seal_change(change)  # the contact stays off the log
        payload = sealed.model_dump_json(exclude_none=True).encode()
        envelope = sign_envelope(REGISTRY_TYPE, payload, [signer]).to_json()
        node.registry.submit_change(request_body(envelope, opening), regulator)
        bulk_updates = plan.updates - plan.live_updates
        for kind, count in (
            ("register", plan.agents),
            ("update", bulk_updates),
            ("order", plan.orders),
        ):
            began = time.perf_counter()
            for envelopes in _signed(kind, count, plan.agents):
                timings["sign"] += time.perf_counter() - began
                began = time.perf_counter()
                _sequence_bulk(node, envelopes)
                timings["sequence"] += time.perf_counter() - began
                began = time.perf_counter()
            console.print(f"  {count:,} {kind} changes sequenced")
        timings["live"] = _live_updates(node, operator, plan)
        began = time.perf_counter()
        while node.log.integrate() is not None:
            pass
        timings["integrate"] = time.perf_counter() - began
        size = node.store.sequenced_size()
    finally:
        node.close()
    info = {"version": CACHE_VERSION, "entries": size, "plan": plan.__dict__, "timings": timings}
    (building / "registry.json").write_text(json.dumps(info, indent=1, default=list))
    building.rename(target)
    return info


def _cached_registry(plan: Plan, again: bool) -> tuple[Path, dict[str, Any], bool]:
    target = _cache_dir(plan.size)
    info, built = built_once(
        target,
        "registry.json",
        again,
        lambda: _build(target, plan),
        f"a {plan.size:,}-entry registry",
    )
    return target, info, built


# --- replay -----------------------------------------------------------------------------


def _replay_rows(data_dir: Path) -> list[list[object]]:
    rows: list[list[object]] = []
    with reading_node(_settings(data_dir)) as node:
        size = node.store.sequenced_size()
        with tempfile.TemporaryDirectory(prefix="custodes-replay-") as scratch:
            target = open_engine(f"sqlite:///{Path(scratch) / 'replay.db'}")
            try:
                upgrade(target)
                began = time.perf_counter()
                replay(node.store, target)
                seconds = time.perf_counter() - began
            finally:
                target.dispose()
        rows.append(
            [
                "replay (apply every entry to empty tables)",
                f"{size:,}",
                f"{seconds:.1f} s",
                fmt_rate(size / seconds),
                "",
            ]
        )
        began = time.perf_counter()
        report = rebuild(node.store)
        seconds = time.perf_counter() - began
        same = (
            "yes"
            if report.equal
            else "NO: " + ", ".join(t for t, (_l, _r, ok) in report.tables.items() if not ok)
        )
        rows.append(
            [
                "rebuild (replay + compare every table)",
                f"{report.entries:,}",
                f"{seconds:.1f} s",
                fmt_rate(report.entries / seconds),
                same,
            ]
        )
    return rows


# --- HTTP load --------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    latencies: list[float]
    failures: dict[int, int]
    server_cpu_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


Request = tuple[str, str, bytes | None, dict[str, str]]  # method, path, body, headers


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> int:
    """One HTTP/1.1 request on a kept-alive connection; the answer's status code."""
    writer.write(head + body)
    header = await reader.readuntil(b"\r\n\r\n")
    fields = dict(line.split(b":", 1) for line in header.split(b"\r\n")[1:] if b":" in line)
    length = next((v for k, v in fields.items() if k.strip().lower() == b"content-length"), None)
    if length is None:
        raise RuntimeError(f"an answer without Content-Length: {header[:200]!r}")
    await reader.readexactly(int(length))
    return int(header[9:12])


def _request_head(request: Request, host: str) -> tuple[bytes, bytes]:
    method, path, body, headers = request
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), body or b""


def _drive(node: NodeProcess, requests: Sequence[Request], clients: int, ok: int) -> Load:
    """Send ``requests`` over ``clients`` kept-alive connections; time each answer.

    A minimal HTTP/1.1 client on asyncio streams: on this benchmark's small machines
    httpx's pool cost more CPU per request than the node itself at 64 connections
    (measured ~3 ms vs ~1.8 ms), so the client would have been what was measured.
    """
    host = node.base_url.removeprefix("http://")
    prepared = [_request_head(r, host) for r in requests]

    async def run() -> tuple[list[float], dict[int, int], float]:
        feed = iter(prepared)
        latencies: list[float] = []
        failures: dict[int, int] = {}

        async def work() -> None:
            reader, writer = await asyncio.open_connection(*host.rsplit(":", 1))
            try:
                for head, body in feed:
                    began = time.perf_counter()
                    status = await _exchange(reader, writer, head, body)
                    latencies.append(time.perf_counter() - began)
                    if status != ok:
                        failures[status] = failures.get(status, 0) + 1
            finally:
                writer.close()

        began = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(clients)))
        return latencies, failures, time.perf_counter() - began

    cpu0 = process_cpu_seconds(node.process.pid)
    latencies, failures, seconds = asyncio.run(run())
    cpu = process_cpu_seconds(node.process.pid) - cpu0
    return Load(len(latencies), seconds, latencies, failures, cpu)


def _row(name: str, clients: int, load: Load) -> list[object]:
    failed = sum(load.failures.values())
    return [
        name,
        clients,
        f"{load.requests:,}" + (f" ({failed} failed: {load.failures})" if failed else ""),
        fmt_rate(load.rate),
        fmt_ms(percentile(load.latencies, 50)),
        fmt_ms(percentile(load.latencies, 99)),
        f"{load.server_cpu_s / load.seconds:.2f}",
        f"{load.server_cpu_s / max(load.requests, 1) * 1e3:.2f} ms",
    ]


def _lease_requests(agents: Sequence[int], count: int) -> list[Request]:
    """Signed lease requests, round-robin over ``agents`` (valid for 30 s)."""
    signers = {i: EnvelopeSigner.from_seed(_seed(f"agent-{i}")) for i in agents}
    now = time.time()
    return [
        ("POST", "/api/v1/leases", lease_request(signers[i], _agent_id(i), now).to_bytes(), _JSON)
        for i in (agents[n % len(agents)] for n in range(count))
    ]


def _lease_rows(node: NodeProcess, plan: Plan) -> tuple[list[list[object]], float]:
    leasing = [i for i in range(min(plan.agents, 2_000)) if i % 10 != 7]  # never suspended
    rows, best = [], 0.0
    for clients in plan.lease_clients:
        load = _drive(node, _lease_requests(leasing, plan.lease_requests), clients, 201)
        console.print(f"  leases, {clients:>2} clients: {fmt_rate(load.rate)}")
        rows.append(_row("POST /api/v1/leases", clients, load))
        best = max(best, load.rate)
    return rows, best


def _regulator_token(node: NodeProcess) -> str:
    response = httpx.post(
        f"{node.base_url}/api/v1/admin/tokens",
        json={"principal": REGULATOR},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


def _lookups(plan: Plan, token: str) -> list[tuple[str, Callable[[random.Random], Request]]]:
    private = {"Authorization": f"Bearer {token}"}

    def agent(headers: dict[str, str]) -> Callable[[random.Random], Request]:
        return lambda rng: (
            "GET",
            f"/api/v1/registry/agents/{_agent_id(rng.randrange(plan.agents))}",
            None,
            headers,
        )

    def search(query: str) -> Callable[[random.Random], Request]:
        return lambda rng: ("GET", f"/api/v1/registry/agents?{query}", None, {})

    def page(rng: random.Random) -> Request:
        after = _agent_id(rng.randrange(plan.agents))
        return ("GET", f"/api/v1/registry/agents?sector=finance&limit=50&after={after}", None, {})

    return [
        # Each answer carries the record's inclusion proof (cached per index and size).
        ("GET agents/{id} with proof (public)", agent({})),
        ("GET agents/{id} with proof (regulator token)", agent(private)),
        ("GET agents?sector=finance&limit=50", search("sector=finance&limit=50")),
        (
            "GET agents?jurisdiction=FR&skill=trading&limit=50",
            search("jurisdiction=FR&skill=trading&limit=50"),
        ),
        ("GET agents?status=suspended&limit=200", search("status=suspended&limit=200")),
        ("GET agents?sector=finance&limit=50&after=<random id>", page),
    ]


def _lookup_rows(node: NodeProcess, plan: Plan) -> list[list[object]]:
    token = _regulator_token(node)
    rows: list[list[object]] = []
    for name, make in _lookups(plan, token):
        for clients in plan.lookup_clients:
            rng = random.Random(len(rows))
            load = _drive(node, [make(rng) for _ in range(plan.lookups)], clients, 200)
            console.print(f"  {name}, {clients:>2} clients: {fmt_rate(load.rate)}")
            rows.append(_row(name, clients, load))
    return rows


@contextmanager
def _serving_copy(data_dir: Path) -> Iterator[NodeProcess]:
    """``custodes serve`` on a copy of the cached registry (the cache stays as built)."""
    with tempfile.TemporaryDirectory(prefix="custodes-bench-registry-") as scratch:
        copy = Path(scratch) / "node"
        shutil.copytree(data_dir, copy)
        with running_node(
            data_dir=copy, origin=ORIGIN, extra_env={"CUSTODES_JURISDICTION": HOME}
        ) as node:
            yield node


COLUMNS = ["request", "clients", "requests", "rate", "p50", "p99", "node CPUs", "node CPU/request"]


def main() -> int:
    args = _parse_args()
    plan = QUICK if args.quick else FULL
    print_conditions("bench_registry")
    with CpuMonitor() as monitor:
        data_dir, info, built = _cached_registry(plan, args.rebuild)
        console.print("replaying the registry…")
        replay_rows = _replay_rows(data_dir)
        with _serving_copy(data_dir) as node:
            console.print("lease renewals…")
            lease_rows, best = _lease_rows(node, plan)
            console.print("look-ups and searches…")
            lookup_rows = _lookup_rows(node, plan)
    timings = info["timings"]
    when = "this run" if built else "cached from an earlier run"
    print_table(
        f"Replaying the registry projection: {info['entries']:,} log entries "
        f"({plan.agents:,} agents registered, {plan.updates:,} updates, "
        f"{plan.orders:,} kill orders)",
        ["", "entries", "time", "entries/s", "tables equal"],
        replay_rows,
        caption=f"built {when}: signing {timings['sign']:.0f} s, bulk sequencing "
        f"{timings['sequence']:.0f} s ({_BULK:,} per transaction); {plan.live_updates:,} "
        f"updates through submit_change took {timings['live']:.1f} s "
        f"({plan.live_updates / timings['live']:,.0f}/s, one transaction each)",
    )
    print_table(
        "Lease renewals one node sustains (signed requests built before the clock)",
        COLUMNS,
        lease_rows,
        caption=f"At TTL 60 s (renew every 30 s) the best rate keeps {best * 30:,.0f} agents "
        f"leased. The node remembers {NONCE_MEMORY:,} request nonces: "
        f"{NONCE_MEMORY / best:,.0f} s of requests at that rate, against the "
        f"{REQUEST_WINDOW_S} s in which a request stays acceptable.",
    )
    print_table(
        f"Registry look-ups and searches ({plan.agents:,} agents; random ids)",
        COLUMNS,
        lookup_rows,
    )
    print_run_load("bench_registry", monitor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
