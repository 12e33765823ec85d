"""Forensics end to end: a timeline of 10,000 events across four member nodes.

Four real member nodes on loopback (``custodes serve``: GB, FR, DE, CA, one genesis
roster; tests/integration/alliance.py). On each, one agent records 2,500 signed decisions
(plain records naming the next member's agent as counterparty), so the incident — the
four agents over the window — holds 10,000 events. Once every node's checkpoint covering
them is cosigned by a quorum of members, the GB regulator (with a token at each node, as
members issue one for an investigation) reconstructs it, timed step by step:

* gather: every node's slice over HTTP, paged, counterparties followed (depth 1);
* order: the causal merge (cross-references, then time; skew bounds);
* verify: every entry's leaf hash and inclusion proof, every checkpoint's signature and
  quorum of cosignatures under the roster — what ``custodes forensics verify`` does;
* report and bundle: the HTML report rendered and the bundle written.

Target: < 10 s for the whole, every proof checked.

    .venv/bin/python benchmarks/bench_forensics_gather.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import REPO_ROOT, console, print_conditions, print_table

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.integration.alliance import Alliance, start_alliance
from tests.integration.procs import ADMIN_TOKEN

from custodes.client import Client
from custodes.client.forensics import gather, ordered
from custodes.forensics.bundle import write_bundle
from custodes.forensics.models import Incident
from custodes.forensics.report import render_report
from custodes.forensics.verify import verify_bundle
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk import sign_decision
from custodes.sdk.bootstrap import enrol_agent

MEMBERS = {"GB": "member", "FR": "member", "DE": "member", "CA": "member"}
TARGET_S = 10.0
BATCH = 500


def _populate(alliance: Alliance, per_node: int) -> tuple[list[str], int]:
    """One agent per member recording ``per_node`` decisions; the agents and the total."""
    codes = list(MEMBERS)
    keys = {code: EnvelopeSigner.generate() for code in codes}
    agents = {
        code: enrol_agent(alliance[code].bootstrap(), keys[code], f"trader-{code.lower()}")
        for code in codes
    }
    start = datetime.now(UTC)
    for n, code in enumerate(codes):
        other = agents[codes[(n + 1) % len(codes)]]
        with Client(alliance[code].url, timeout=60.0) as client:
            for first in range(0, per_node, BATCH):
                client.append(
                    [
                        sign_decision(
                            keys[code],
                            agents[code],
                            "trade",
                            f"decision {i}: the spread is within the mandate",
                            [other],
                            decided_at=start + timedelta(milliseconds=i),
                        )
                        for i in range(first, min(per_node, first + BATCH))
                    ]
                )
    return list(agents.values()), per_node * len(codes)


def _wait_final(alliance: Alliance, timeout: float = 300.0) -> None:
    """Until each node has a final checkpoint (a quorum of members cosigned it) covering
    every entry it held once the decisions were recorded."""
    deadline = time.monotonic() + timeout
    for code in MEMBERS:
        with Client(alliance[code].url, timeout=10.0) as client:
            size = client.node_info().tree_size
            while int(client.federation_checkpoint().get("final_size") or 0) < size:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{code}: no final checkpoint covering {size} entries")
                time.sleep(0.5)


def measure(alliance: Alliance, agents: list[str], since: datetime) -> dict[str, float]:
    tokens = {}
    for code in MEMBERS:
        with Client(alliance[code].url, admin_token=ADMIN_TOKEN, timeout=10.0) as admin:
            tokens[code] = str(admin.issue_token("regulator:gb")["token"])
    incident = Incident(agents=agents[:1], depth=len(agents), start=since, end=datetime.now(UTC))
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    gathered = gather(incident, seed=alliance["GB"].url, tokens=tokens, asked_by="regulator:gb")
    times["gather (HTTP, 4 nodes)"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    timeline = ordered(incident, gathered)
    times["order (causal merge)"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    verified = verify_bundle(timeline)
    times["verify every proof and cosignature"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write_bundle(timeline, Path(out) / "bundle.json")
        (Path(out) / "report.html").write_text(render_report(timeline, verified))
    times["report and bundle written"] = time.perf_counter() - t3
    times["events"] = float(len(timeline.events))
    times["total"] = time.perf_counter() - t0
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 events instead of 10,000")
    args = parser.parse_args()
    per_node = 500 if args.quick else 2500
    print_conditions("bench_forensics_gather")
    with tempfile.TemporaryDirectory(prefix="custodes-forensics-") as tmp:
        alliance = start_alliance(Path(tmp), MEMBERS, settings={"checkpoint_interval": "0.5"})
        try:
            since = datetime.now(UTC) - timedelta(seconds=1)
            console.print(f"recording {per_node * len(MEMBERS):,} decisions (not timed)...")
            agents, total = _populate(alliance, per_node)
            console.print("waiting for final checkpoints covering them (not timed)...")
            _wait_final(alliance)
            console.print("reconstructing (timed)...")
            times = measure(alliance, agents, since)
        finally:
            alliance.stop()
    events = int(times.pop("events"))
    total_s = times.pop("total")
    rows = [(step, f"{seconds:.2f}") for step, seconds in times.items()]
    rows.append(("total", f"{total_s:.2f}"))
    print_table(
        f"Forensic timeline: {events} events ({total} recorded) across four members",
        ("step", "seconds"),
        rows,
    )
    met = total_s < TARGET_S and events >= total
    console.print(
        f"target < {TARGET_S:.0f} s with every proof checked: {'met' if met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
