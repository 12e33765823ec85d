"""TAXII 2.1 object reads with pagination at 100,000 objects (docs/design/0029, "TAXII 2.1").

One real node process (``custodes serve``, SQLite) on loopback holds 100,000 STIX
objects delivered from FR under mixed TLPs (bulk-inserted into its ``stix_objects``):
20 % CLEAR, 25 % GREEN, 25 % AMBER naming GB, 10 % AMBER+STRICT naming GB, 10 % RED
naming the GB regulator, 10 % AMBER naming DE. One client reads every object it may see,
page by page (``next``), as the public (CLEAR only) and as the GB regulator (all but
AMBER for DE), with ``limit=1000`` and with the default page (100). Figures: objects/s
per client (target >= 1,000), pages, p50/p99 page latency, and rows scanned per object
served (the cost of never serving, counting or paging over what the reader may not
read).

The ceiling without HTTP, measured in the same run: the same pages read in this process
straight through the query code (``custodes.redteam.taxii.read_page``) on the same
database; the ratio HTTP / ceiling is what the server keeps of it.

    .venv/bin/python benchmarks/bench_taxii.py [--quick]     # --quick: 20,000 objects
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
import uuid
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy import insert

from _common import (
    ADMIN_TOKEN,
    REPO_ROOT,
    console,
    fmt_ms,
    fmt_rate,
    percentile,
    print_conditions,
    print_table,
    running_node,
)

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.redteam.store import stix_objects
from custodes.redteam.taxii import COLLECTION_ID, Pager, parse_query, read_page
from custodes.redteam.tlp import MARKING_IDS, Audience, Reader
from custodes.store.db import open_engine, read_tx, write_tx

TAXII = "application/taxii+json;version=2.1"
OBJECTS = f"/taxii2/redteam/collections/{COLLECTION_ID}/objects/"
MIX = (  # (share in tenths of a hundred, audience)
    (20, Audience(tlp="clear", stage="disclosed", origin="FR")),
    (25, Audience(tlp="green", stage="disclosed", origin="FR")),
    (25, Audience(tlp="amber", stage="disclosed", origin="FR", parties=("GB",))),
    (10, Audience(tlp="amber+strict", stage="disclosed", origin="FR", parties=("GB",))),
    (
        10,
        Audience(
            tlp="red",
            stage="disclosed",
            origin="FR",
            parties=("GB",),
            principals=("GB/regulator:gb",),
        ),
    ),
    (10, Audience(tlp="amber", stage="disclosed", origin="FR", parties=("DE",))),
)
TYPES = ("vulnerability", "attack-pattern", "course-of-action", "sighting", "relationship")
REGULATOR = Reader("principal", party="GB", principal="regulator:gb", role="regulator")


def _audience_of(n: int) -> Audience:
    slot, position = n % 100, 0
    for share, audience in MIX:
        position += share
        if slot < position:
            return audience
    raise AssertionError("the shares add up to 100")


def _row(n: int, t0: float) -> dict[str, object]:
    audience = _audience_of(n)
    kind = TYPES[n % len(TYPES)]
    oid = f"{kind}--{uuid.UUID(int=n, version=4)}"
    obj = {
        "type": kind,
        "spec_version": "2.1",
        "id": oid,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": f"benchmark object {n}",
        "description": "A synthetic red-teaming object of about the size of a real one. " * 3,
        "object_marking_refs": [MARKING_IDS[audience.tlp]],
    }
    return {
        "id": oid,
        "modified": obj["modified"],
        "type": kind,
        "spec_version": "2.1",
        "date_added": round(t0 + n * 1e-3, 6),
        "owner": "FR",
        "disclosure": None,
        "audience": audience.model_dump_json(),
        "object": orjson.dumps(obj).decode(),
    }


def seed(db_url: str, count: int) -> float:
    engine = open_engine(db_url)
    began = time.perf_counter()
    try:
        t0 = time.time()
        with write_tx(engine) as conn:
            for start in range(0, count, 5000):
                rows = [_row(n, t0) for n in range(start, min(count, start + 5000))]
                conn.execute(insert(stix_objects), rows)
    finally:
        engine.dispose()
    return time.perf_counter() - began


def regulator_token(base_url: str) -> str:
    key = EnvelopeSigner.from_seed(b"g" * 32)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    record = {
        "id": "regulator:gb",
        "role": "regulator",
        "jurisdiction": "GB",
        "name": "GB regulator",
        "public_key": base64.b64encode(key.public_key).decode(),
    }
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        http.post("/api/v1/admin/principals", json=record, headers=admin).raise_for_status()
        issued = http.post(
            "/api/v1/admin/tokens", json={"principal": "regulator:gb"}, headers=admin
        )
        issued.raise_for_status()
        return str(issued.json()["token"])


@dataclass(frozen=True)
class Run:
    objects: int
    pages: int
    seconds: float
    latencies: list[float]
    scanned: int = 0

    @property
    def rate(self) -> float:
        return self.objects / self.seconds


def read_http(base_url: str, token: str | None, limit: int | None) -> Run:
    headers = {"Accept": TAXII} | ({"Authorization": f"Bearer {token}"} if token else {})
    params: dict[str, str] = {} if limit is None else {"limit": str(limit)}
    objects, latencies = 0, []
    began = time.perf_counter()
    with httpx.Client(base_url=base_url, headers=headers, timeout=60.0) as http:
        while True:
            sent = time.perf_counter()
            response = http.get(OBJECTS, params=params)
            response.raise_for_status()
            envelope = orjson.loads(response.content)
            latencies.append(time.perf_counter() - sent)
            objects += len(envelope.get("objects", ()))
            if not envelope.get("more"):
                break
            params = {**params, "next": envelope["next"]}
    return Run(objects, len(latencies), time.perf_counter() - began, latencies)


def read_direct(db_url: str, pager: Pager, reader: Reader, limit: int | None) -> Run:
    """The ceiling: the same pages through the query code, with the objects' JSON."""
    engine = open_engine(db_url)
    items = [] if limit is None else [("limit", str(limit))]
    objects = scanned = 0
    latencies = []
    began = time.perf_counter()
    try:
        following: list[tuple[str, str]] = []
        while True:
            sent = time.perf_counter()
            with read_tx(engine) as conn:
                query = parse_query("objects", items + following)
                page = read_page(conn, query, reader, pager, endpoint="objects")
            latencies.append(time.perf_counter() - sent)
            objects += len(page.items)
            scanned += page.scanned
            if not page.more:
                break
            following = [("next", page.next or "")]
    finally:
        engine.dispose()
    return Run(objects, len(latencies), time.perf_counter() - began, latencies, scanned)


def _rows(name: str, http: Run, direct: Run) -> list[list[object]]:
    return [
        [
            f"{name}, HTTP",
            http.objects,
            http.pages,
            fmt_rate(http.rate),
            fmt_ms(percentile(http.latencies, 50)),
            fmt_ms(percentile(http.latencies, 99)),
            "",
            "",
        ],
        [
            f"{name}, query code",
            direct.objects,
            direct.pages,
            fmt_rate(direct.rate),
            fmt_ms(percentile(direct.latencies, 50)),
            fmt_ms(percentile(direct.latencies, 99)),
            f"{direct.scanned / max(direct.objects, 1):.2f}",
            f"{http.rate / direct.rate:.0%}",
        ],
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 objects")
    count = 20_000 if parser.parse_args().quick else 100_000
    print_conditions("bench_taxii")
    with running_node(extra_env={"CUSTODES_JURISDICTION": "GB"}) as node:
        settings = Settings(data_dir=node.data_dir, jurisdiction="GB")
        seeding = seed(settings.db_url, count)
        console.print(f"seeded {count:,} objects in {seeding:.1f} s")
        token = regulator_token(node.base_url)
        pager = _node_pager(settings)
        rows: list[list[object]] = []
        for who, reader, credential in (
            ("public", Reader.public(), None),
            ("GB regulator", REGULATOR, token),
        ):
            for limit in (1000, None):
                name = f"{who}, limit={limit or 'default (100)'}"
                http = read_http(node.base_url, credential, limit)
                direct = read_direct(settings.db_url, pager, reader, limit)
                if http.objects != direct.objects:
                    raise RuntimeError(
                        f"{name}: HTTP served {http.objects}, the code {direct.objects}"
                    )
                rows += _rows(name, http, direct)
                console.print(f"{name}: {fmt_rate(http.rate)} over HTTP")
    print_table(
        f"TAXII 2.1 object reads, {count:,} objects (mixed TLPs), one client",
        [
            "reader, page size, path",
            "objects",
            "pages",
            "objects/s",
            "p50 page",
            "p99 page",
            "rows scanned / served",
            "HTTP / ceiling",
        ],
        rows,
        caption="target >= 1,000 objects/s per client; the ceiling is the query code in "
        "this process on the same database (no HTTP, no JSON parse by a client)",
    )
    return 0


def _node_pager(settings: Settings) -> Pager:
    """The node's own pager (its entry key), so both paths do the same work."""
    from custodes.ledger.keys import load_or_create_entry_signer  # noqa: PLC0415

    _, signer = load_or_create_entry_signer(settings.node_key_file, "node")
    return Pager.for_node(signer.seed())


if __name__ == "__main__":
    raise SystemExit(main())
