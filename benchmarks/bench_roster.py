"""The alliance roster: verifying versions offline, and applying one at a live node.

1. ``verify_next`` over a chain of versions of a four-member roster (GB, FR, DE, CA and
   AU as partner): each version checks three member signatures against the trusted
   version's keys and three against its own. The same run measures strict Ed25519
   verification over the same signed bytes (custodes.ledger.ed25519), the floor: the
   ratio printed is (6 verifications' time) / (time per version).
2. ``POST /api/v1/federation/roster`` at a live node (in process, SQLite): verified,
   logged on the node's own log with its regulators' principals, put in force and
   queued for forwarding, per version; p50 and p99.

    .venv/bin/python benchmarks/bench_roster.py [--versions N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import console, fmt_ms, percentile, print_conditions, print_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
from fastapi.testclient import TestClient
from tests.federation.world import found_world, set_status

from custodes.api import create_app
from custodes.config import Settings
from custodes.federation.roster import parse_roster, verify_next
from custodes.ledger.ed25519 import verify_strict


def _chain(world, versions: int) -> list[dict]:  # type: ignore[no-untyped-def]
    chain = [world.genesis.document]
    for i in range(versions):
        status = "suspended" if i % 2 == 0 else "member"
        chain.append(world.next(chain[-1], ["GB", "FR", "DE"], set_status("CA", status)))
    return chain


def _verify_rate(chain: list[dict]) -> tuple[float, float]:  # type: ignore[type-arg]
    trusted = parse_roster(chain[0])
    started = time.perf_counter()
    for document in chain[1:]:
        trusted = verify_next(trusted, document)
    per_version = (time.perf_counter() - started) / (len(chain) - 1)
    roster = parse_roster(chain[1])
    message = roster.signed_bytes()
    keys = list(roster.root_keys.values())
    sigs = [bytes.fromhex(s["sig"]) for s in roster.document["signatures"]]
    rounds = 300
    started = time.perf_counter()
    for _ in range(rounds):
        for key, sig in zip(keys, sigs, strict=False):
            verify_strict(key, sig, message)
    per_verify = (time.perf_counter() - started) / (rounds * min(len(keys), len(sigs)))
    return per_version, per_verify


def _apply_latency(root: Path, chain: list[dict]) -> list[float]:  # type: ignore[type-arg]
    world_root = root / "alliance"
    settings = Settings(
        data_dir=world_root / "gb",
        database_url=f"sqlite:///{root / 'gb.db'}",
        origin="gb.roster.test/log",
        jurisdiction="GB",
        roster_file=root / "roster-1.json",
        roster_poll_interval=0.0,
        checkpoint_interval=0.5,
    )
    times = []
    with TestClient(create_app(settings)) as client:
        for document in chain[1:]:
            started = time.perf_counter()
            answer = client.post("/api/v1/federation/roster", json=document)
            times.append(time.perf_counter() - started)
            assert answer.status_code == 201, answer.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="20 versions (make bench)")
    args = parser.parse_args()
    if args.quick:
        args.versions = 20
    logging.getLogger("custodes").setLevel(logging.ERROR)  # peers of the roster are not up
    print_conditions("bench_roster")
    with tempfile.TemporaryDirectory(prefix="bench-roster-") as scratch:
        root = Path(scratch)
        world = found_world(root / "alliance")
        (root / "roster-1.json").write_bytes(orjson.dumps(world.genesis.document))
        chain = _chain(world, args.versions)
        size = len(parse_roster(chain[1]).to_bytes())
        per_version, per_verify = _verify_rate(chain)
        times = _apply_latency(root, chain)
    floor = 6 * per_verify
    print_table(
        "Roster versions (4 members + 1 partner, 3-of-4 signatures)",
        ("figure", "value"),
        [
            ("versions", args.versions),
            ("document size", f"{size:,} bytes"),
            ("verify_next per version", f"{per_version * 1e6:,.0f} µs"),
            ("Ed25519 strict verify (floor unit)", f"{per_verify * 1e6:,.0f} µs"),
            ("floor: 6 verifications", f"{floor * 1e6:,.0f} µs"),
            ("ratio floor / verify_next", f"{floor / per_version:.2f}"),
            ("POST /roster p50 (verify, log, principals)", fmt_ms(percentile(times, 50))),
            ("POST /roster p99", fmt_ms(percentile(times, 99))),
            ("POST /roster mean", fmt_ms(statistics.fmean(times))),
        ],
    )
    console.print("ratio 1.0 = all time in signature checks; the rest is parsing and hashing")


if __name__ == "__main__":
    main()
