"""The dashboard's server time per page with 50,000 agents and 1,000,000 log entries.

Target (issue 12): every page p95 < 200 ms.

How the node is built (SQLite, one process; what is synthetic is said here):

1. A GB node started for real (``create_app`` under a TestClient) with the red-teaming
   test world (tests/redteam/world.py): a regulator, two operators, a researcher and an
   auditor, each a registered principal with an API token; three agents registered by
   signed changes; a disclosed TLP:AMBER disclosure and a re-test result, all through
   the real API.
2. The node stopped, its database grown directly (executemany, big transactions):
   ``--entries`` decision-shaped log entries, *not signed* (their leaf hashes are real,
   so the tree the node integrates over them is a real Merkle tree with real signed
   checkpoints), each a decision of one of ``--agents`` synthetic agents (20 each at the
   defaults); the synthetic agents are rows in the registry's projection tables
   (``agents``, ``record_versions``, ``agent_jurisdictions``, ``agent_skills``) with valid
   ``AgentRecord`` JSON but no registration entry of their own (their ``entry_index``
   points at a filler entry); 1 % of them carry an active global suspension row in
   ``kill_orders`` (no order entry). Then the node's own code integrates the tree and
   fills the decision and evaluation read indexes, as a node catching up would.
3. The node started again; each page is requested ``--requests`` times in-process
   (TestClient: the figures include the ASGI round trip, so they are an upper bound on
   the server's own time), as the public and as the regulator signed in through the real
   sign-in form. The table shows p50, p95 and max per page against the target.

    .venv/bin/python benchmarks/bench_dashboard.py [--agents 50000] [--entries 1000000]
                                                   [--requests 200] [--quick]

``--quick``: 5,000 agents, 100,000 entries, 50 requests (a smoke run, not the target).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from custodes.api import create_app
from custodes.config import Settings
from custodes.evals.index import EVAL_RESULTS
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.readindex import DECISIONS
from custodes.ledger.store import entries, idempotency, log_state
from custodes.node import Node
from custodes.registry.models import AgentRecord
from custodes.registry.store import (
    agent_jurisdictions,
    agent_skills,
    agents,
    kill_orders,
    record_versions,
)
from custodes.store.db import write_tx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.redteam.world import MODEL_AGENT, REGULATOR, World, build_world  # noqa: E402

TARGET_MS = 200.0
_TX = 20_000
_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_SECTORS = ("finance", "energy", "health", "retail", "transport")
_PLACES = ("FR", "DE", "CA", "US", "JP")
_SKILLS = ("web-browse", "trade", "email", "code", "search")


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        origin="bench.custodes.example/log",
        jurisdiction="GB",
        checkpoint_interval=0.5,
        integrate_delay=0.0,
        deployment_gate=False,
    )


def synthetic_id(n: int) -> str:
    return f"urn:custodes:gb:agent:bench-{n:06d}"


# --- step 1: the real world -------------------------------------------------------------


def real_world(settings: Settings) -> dict[str, Any]:
    """Principals, tokens, three agents, a disclosure: through the running node's API."""
    with TestClient(create_app(settings)) as http:
        world: World = build_world(http)
        disclosure = world.disclosed()
        world.retest_result(disclosure, MODEL_AGENT, successes=3)
        return {"tokens": dict(world.tokens), "disclosure": disclosure}


# --- step 2: the bulk -------------------------------------------------------------------


def _record(n: int) -> dict[str, Any]:
    record = AgentRecord(
        id=synthetic_id(n),
        name=f"bench-{n:06d}",
        version="1.0",
        operator="operator:acme" if n % 2 else "operator:other",
        home_jurisdiction="GB",
        operating_jurisdictions=(_PLACES[n % len(_PLACES)],),
        sector=_SECTORS[n % len(_SECTORS)],
        risk_tier="high",
        autonomy_level=3,
        intended_purpose="automated trading within a mandate",
        skills=({"id": _SKILLS[n % len(_SKILLS)], "name": "a skill"},),  # type: ignore[arg-type]
    )
    return record.model_dump(mode="json", exclude_none=True)


def _agent_rows(start: int, end: int, first_index: int) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {"a": [], "v": [], "j": [], "s": [], "k": []}
    for n in range(start, end):
        record = _record(n)
        text = orjson.dumps(record).decode()
        index = first_index + n
        suspended = n % 100 == 0
        rows["a"].append(
            {
                "id": record["id"],
                "operator": record["operator"],
                "home": "GB",
                "sector": record["sector"],
                "model": None,
                "status": "suspended" if suspended else "active",
                "record": text,
                "entry_index": index,
                "created_index": index,
            }
        )
        rows["v"].append(
            {"kind": "agent", "id": record["id"], "entry_index": index, "record": text}
        )
        for place in ("GB", *record["operating_jurisdictions"]):
            rows["j"].append({"agent_id": record["id"], "jurisdiction": place})
        rows["s"].append({"agent_id": record["id"], "skill": record["skills"][0]["id"]})
        if suspended:
            rows["k"].append(_order_row(record["id"], index))
    return rows


def _order_row(agent_id: str, index: int) -> dict[str, Any]:
    return {
        "order_id": f"bench-order-{agent_id.rsplit('-', 1)[1]}",
        "agent_id": agent_id,
        "selector": None,
        "op": "suspend",
        "scope": "global",
        "territory": None,
        "reason": "synthetic suspension for the benchmark",
        "authority": REGULATOR,
        "status": "active",
        "issued_index": index,
        "lifted_index": None,
    }


def _filler(n: int, agent: str) -> tuple[bytes, str]:
    """A decision-shaped entry (not signed) and its idempotency key."""
    key = str(uuid.UUID(bytes=hashlib.sha256(n.to_bytes(8, "big")).digest()[:16]))
    payload = orjson.dumps(
        {
            "v": 1,
            "agent": agent,
            "action": f"approve-transfer:{n}",
            "rationale": "Counterparty risk is below the mandate's threshold.",
            "decided_at": (_T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
            "idempotency_key": key,
        }
    )
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": DECISION_TYPE,
        "signatures": [{"keyid": "bench-filler", "sig": base64.b64encode(key.encode()).decode()}],
    }
    return orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS), key


def _entries(start: int, end: int, first: int, n_agents: int) -> tuple[list[Any], list[Any]]:
    rows, keys, now = [], [], time.time()
    for n in range(start, end):
        agent = synthetic_id(n % n_agents)
        data, key = _filler(n, agent)
        index = first + n
        rows.append(
            {
                "idx": index,
                "leaf_hash": leaf_hash(data),
                "data": data,
                "payload_type": DECISION_TYPE,
                "sequenced_at": now,
            }
        )
        keys.append({"agent": agent, "key": key, "entry_index": index})
    return rows, keys


def grow(settings: Settings, n_agents: int, n_entries: int) -> int:
    """Append the filler entries and the synthetic agents; integrate; fill the indexes."""
    node = Node(settings)
    try:
        first = node.store.sequenced_size()
        began = time.perf_counter()
        for at in range(0, n_entries, _TX):
            rows, keys = _entries(at, min(n_entries, at + _TX), first, n_agents)
            with write_tx(node.engine) as conn:
                conn.execute(insert(entries), rows)
                conn.execute(insert(idempotency), keys)
                conn.execute(update(log_state).values(sequenced=first + at + len(rows)))
            print(f"\r  entries {at + len(rows):>9,} / {n_entries:,}", end="", flush=True)
        print(f"  ({time.perf_counter() - began:.0f} s)")
        for at in range(0, n_agents, _TX):
            found = _agent_rows(at, min(n_agents, at + _TX), first)
            with write_tx(node.engine) as conn:
                for table, key in (
                    (agents, "a"),
                    (record_versions, "v"),
                    (agent_jurisdictions, "j"),
                    (agent_skills, "s"),
                    (kill_orders, "k"),
                ):
                    if found[key]:
                        conn.execute(insert(table), found[key])
        print(f"  agents  {n_agents:>9,}")
        began = time.perf_counter()
        while node.log.integrate() is not None:
            print(f"\r  integrated {node.store.tree_size()[0]:>9,}", end="", flush=True)
        print(f"  ({time.perf_counter() - began:.0f} s)")
        for kind in (DECISIONS.name, EVAL_RESULTS.name):
            node.read_index.catch_up(kind)
        return node.store.tree_size()[0]
    finally:
        node.close()


# --- step 3: the pages ------------------------------------------------------------------


def _sign_in(client: TestClient, token: str) -> None:
    form = client.get("/ui/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = client.post(
        "/ui/signin",
        data={"csrf": csrf.group(1), "token": token, "next": "/ui/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def _pages(n_agents: int, disclosure: str) -> list[tuple[str, Callable[[random.Random], str]]]:
    def agent(rng: random.Random) -> str:
        return "/ui/agents/" + quote(synthetic_id(rng.randrange(n_agents)), safe="")

    def after(rng: random.Random) -> str:
        return "/ui/agents?after=" + quote(synthetic_id(rng.randrange(n_agents)), safe="")

    return [
        ("overview /ui/", lambda _: "/ui/"),
        ("registry, first page", lambda _: "/ui/agents"),
        ("registry, random page", after),
        ("registry, status=suspended", lambda _: "/ui/agents?status=suspended"),
        ("registry, FR + energy", lambda _: "/ui/agents?jurisdiction=FR&sector=energy"),
        ("registry, skill=trade", lambda _: "/ui/agents?skill=trade"),
        (
            "registry, id prefix",
            lambda rng: "/ui/agents?q=" + quote(synthetic_id(rng.randrange(n_agents))[:-2]),
        ),
        ("agent page (random)", agent),
        ("agent page, evals + disclosure", lambda _: "/ui/agents/" + quote(MODEL_AGENT, safe="")),
        ("red-team list", lambda _: "/ui/redteam"),
        ("red-team disclosure", lambda _: f"/ui/redteam/{disclosure}"),
    ]


def _time(client: TestClient, url: str) -> float:
    began = time.perf_counter()
    answer = client.get(url)
    elapsed = (time.perf_counter() - began) * 1000
    if answer.status_code not in (200, 404):
        raise SystemExit(f"{url}: HTTP {answer.status_code}: {answer.text[:300]}")
    return elapsed


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(settings: Settings, built: dict[str, Any], n_agents: int, requests: int) -> bool:
    rng = random.Random(12)
    ok = True
    with TestClient(create_app(settings)) as public:
        regulator = TestClient(public.app)
        _sign_in(regulator, built["tokens"][REGULATOR])
        print(f"\n{'page':<34}{'viewer':<11}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}  target")
        for name, make in _pages(n_agents, built["disclosure"]):
            for viewer, client in (("public", public), ("regulator", regulator)):
                _time(client, make(rng))  # warm: templates compiled, caches filled
                times = [_time(client, make(rng)) for _ in range(requests)]
                p95 = _pct(times, 0.95)
                verdict = "ok" if p95 < TARGET_MS else "MISSED"
                ok = ok and p95 < TARGET_MS
                print(
                    f"{name:<34}{viewer:<11}{_pct(times, 0.5):>8.1f}{p95:>8.1f}"
                    f"{max(times):>8.1f}  < {TARGET_MS:.0f} {verdict}"
                )
    return ok


def run(args: argparse.Namespace, data_dir: Path) -> bool:
    """Build the node in ``data_dir`` (unless a previous run with --keep did), time it."""
    settings = _settings(data_dir)
    saved = data_dir / "bench-dashboard.json"
    if saved.exists():
        built = orjson.loads(saved.read_bytes())
        args.agents = built["agents"]
        print(f"1-2. reusing the node built in {data_dir}")
    else:
        print("1. the real world through the API")
        built = real_world(settings)
        print(f"2. {args.agents:,} agents and {args.entries:,} entries, bulk")
        grow(settings, args.agents, args.entries)
        saved.write_bytes(orjson.dumps({**built, "agents": args.agents}))
    print(f"3. pages, {args.requests} requests each (SQLite)")
    return measure(settings, built, args.agents, args.requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=50_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the node here once; reuse it later")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.entries, args.requests = 5_000, 100_000, 50
    with tempfile.TemporaryDirectory(prefix="custodes-bench-dashboard-") as scratch:
        ok = run(args, args.keep or Path(scratch))
    print("\nall pages within target" if ok else "\nsome pages missed the target")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
