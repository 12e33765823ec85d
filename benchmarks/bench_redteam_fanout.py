"""Red-teaming fan-out: a disclosure published on FR, present on GB, DE and CA.

Four real member nodes on loopback (``custodes serve``: GB, FR, DE, CA, one genesis
roster: tests/integration/alliance.py), pulling every 60 s (so what is measured is the
push). Each disclosure is six STIX objects under TLP:AMBER to the members (vulnerability,
attack-pattern, course-of-action, two relationships, FR's identity), stored in FR's
database as FR's service stores them (``put_object``, owner FR) and handed to FR's
pusher (``custodes.federation.redteam_sync.RedteamPusher``, signing with FR's node entry
key from its data directory, as the node's ``published`` hook does): the push code is
the node's own, run in this process. Measured per disclosure and node: from the commit
at FR to the vulnerability's row being readable in that node's database (SQLite, polled
every 5 ms by one thread per node from this process). Disclosures are 0-200 ms apart.

Target: p99 < 2 s end to end across the four nodes.

    .venv/bin/python benchmarks/bench_redteam_fanout.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, console, fmt_ms, percentile, print_conditions, print_table

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import Engine, select
from tests.integration.alliance import Alliance, start_alliance

from custodes.federation.redteam_sync import RedteamPusher
from custodes.federation.state import Federation
from custodes.ledger.keys import load_or_create_entry_signer
from custodes.redteam.store import StoredObject, put_object, stix_objects
from custodes.redteam.tlp import MARKING_IDS, Audience
from custodes.store.db import open_engine, read_tx, write_tx

MEMBERS = {"GB": "member", "FR": "member", "DE": "member", "CA": "member"}
PEERS = ("GB", "DE", "CA")
TARGET_P99_S = 2.0
AUDIENCE = Audience(tlp="amber", stage="disclosed", origin="FR", parties=tuple(MEMBERS))


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _bundle(n: int) -> list[dict[str, Any]]:
    """One disclosure's objects (shaped as the STIX module makes them)."""
    stamp, identity = _stamp(), "identity--5b1f0d3e-0c1d-4a3e-8f00-00000000f0f0"
    common = {
        "spec_version": "2.1",
        "created": stamp,
        "modified": stamp,
        "created_by_ref": identity,
        "object_marking_refs": [MARKING_IDS["amber"]],
    }
    vuln = {
        "type": "vulnerability",
        "id": f"vulnerability--{uuid.uuid4()}",
        **common,
        "name": f"jailbreak {n}",
        "description": "role-play bypass " * 40,
    }
    attack = {
        "type": "attack-pattern",
        "id": f"attack-pattern--{uuid.uuid4()}",
        **common,
        "name": f"probe {n}",
        "external_references": [
            {"source_name": "mitre-atlas", "external_id": "AML.T0054"},
            {"source_name": "owasp-llm", "external_id": "LLM01"},
        ],
    }
    fix = {
        "type": "course-of-action",
        "id": f"course-of-action--{uuid.uuid4()}",
        **common,
        "name": "refuse role-play that asks for the forbidden tool",
    }
    rels = [
        {
            "type": "relationship",
            "id": f"relationship--{uuid.uuid4()}",
            **common,
            "relationship_type": kind,
            "source_ref": src["id"],
            "target_ref": vuln["id"],
        }
        for kind, src in (("targets", attack), ("mitigates", fix))
    ]
    me = {
        "type": "identity",
        "id": identity,
        "spec_version": "2.1",
        "created": stamp,
        "modified": stamp,
        "name": "France",
        "identity_class": "organization",
    }
    return [vuln, attack, fix, *rels, me]


class Watcher(threading.Thread):
    """Polls one node's database for the vulnerabilities not seen there yet."""

    def __init__(self, code: str, engine: Engine) -> None:
        super().__init__(name=f"watch-{code}", daemon=True)
        self.code, self.engine = code, engine
        self.pending: dict[str, float] = {}  # id -> published at (perf_counter)
        self.seen: dict[str, float] = {}  # id -> latency (s)
        self.lock, self.stop = threading.Lock(), threading.Event()

    def expect(self, oid: str, at: float) -> None:
        with self.lock:
            self.pending[oid] = at

    def run(self) -> None:
        while not self.stop.wait(0.005):
            with self.lock:
                ids = list(self.pending)
            if not ids:
                continue
            query = select(stix_objects.c.id).where(stix_objects.c.id.in_(ids))
            with read_tx(self.engine) as conn:
                found = set(conn.execute(query).scalars())
            now = time.perf_counter()
            with self.lock:
                for oid in found:
                    self.seen[oid] = now - self.pending.pop(oid)


def _publisher(alliance: Alliance) -> RedteamPusher:
    federation = Federation("FR")
    federation.install(alliance.roster)
    key = load_or_create_entry_signer(alliance["FR"].data_dir / "node.key", "node")[1]
    return RedteamPusher(federation, key, timeout=5.0, budget=2 * 1024 * 1024)


def _publish(engine: Engine, objects: list[dict[str, Any]]) -> list[StoredObject]:
    with write_tx(engine) as conn:
        stored = [
            put_object(conn, o, owner="FR", audience=AUDIENCE, disclosure=objects[0]["id"])
            for o in objects
        ]
    return [s for s in stored if s is not None]


def measure(alliance: Alliance, count: int) -> dict[str, list[float]]:
    engines = {
        c: open_engine(f"sqlite:///{(n.data_dir / 'custodes.db').resolve()}")
        for c, n in alliance.nodes.items()
    }
    watchers = {c: Watcher(c, engines[c]) for c in PEERS}
    pusher = _publisher(alliance)
    try:
        for w in watchers.values():
            w.start()
        for n in range(count):
            objects = _bundle(n)
            stored = _publish(engines["FR"], objects)
            at = time.perf_counter()
            for w in watchers.values():
                w.expect(objects[0]["id"], at)
            pusher.push(stored)
            time.sleep(random.uniform(0.0, 0.2))
        deadline = time.monotonic() + 30
        while any(w.pending for w in watchers.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for w in watchers.values():
            w.stop.set()
            w.join(timeout=5)
        pusher.close()
        for engine in engines.values():
            engine.dispose()
    missing = {c: len(w.pending) for c, w in watchers.items() if w.pending}
    if missing:
        console.print(f"[red]never arrived within 30 s: {missing}[/red]")
    return {c: list(w.seen.values()) for c, w in watchers.items()}


def report(latencies: dict[str, list[float]], count: int) -> None:
    rows = []
    everything = [v for values in latencies.values() for v in values]
    for name, values in [*latencies.items(), ("all peers", everything)]:
        rows.append(
            (
                name,
                f"{len(values)}/{count if name != 'all peers' else 3 * count}",
                fmt_ms(percentile(values, 50)),
                fmt_ms(percentile(values, 99)),
                fmt_ms(max(values) if values else float("nan")),
            )
        )
    p99 = percentile(everything, 99)
    verdict = "meets" if p99 < TARGET_P99_S else "MISSES"
    print_table(
        "Disclosure fan-out FR → GB, DE, CA (commit at FR → row readable at the peer)",
        ["node", "arrived", "p50", "p99", "max"],
        rows,
        caption=f"target p99 < {TARGET_P99_S:.0f} s: {verdict} ({fmt_ms(p99)})",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 disclosures instead of 50")
    args = parser.parse_args()
    count = 20 if args.quick else 50
    print_conditions("bench_redteam_fanout")
    with tempfile.TemporaryDirectory(prefix="custodes-fanout-") as tmp:
        settings = {"redteam_pull_interval": "60", "gossip_interval": "30"}
        alliance = start_alliance(Path(tmp), MEMBERS, settings=settings)
        try:
            latencies = measure(alliance, count)
        finally:
            alliance.stop()
    report(latencies, count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
