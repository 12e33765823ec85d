"""Interop: the real ``taxii2-client`` against a real node process, and ``stix2`` on what
it exports.

A GB node serves four FR disclosures delivered to it (TLP:AMBER naming GB, stored the
way the federation stores them); a GB regulator reads them with taxii2-client's Server,
ApiRoot, Collection and ``as_pages``, a GB researcher adds a report, and the exported
bundle loads into stix2's MemoryStore.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import stix2
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.redteam.stix import disclosure_objects, stable_id
from custodes.redteam.store import put_object
from custodes.redteam.taxii import COLLECTION_ID, taxii_timestamp
from custodes.redteam.tlp import Audience
from custodes.redteam.validation import validate_objects
from custodes.store.db import open_engine, write_tx
from tests.integration.procs import ADMIN_TOKEN, NodeProcess, node_env
from tests.redteam.lifecycle import DISCLOSED, REPORTED

AMBER_GB = Audience(tlp="amber", stage="disclosed", origin="FR", parties=("GB",))
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class Served:
    url: str
    tokens: dict[str, str]  # principal id -> API token
    stored: list[tuple[str, str, float]]  # (id, modified, date_added) in date_added order

    def collection(self, principal: str) -> Collection:
        url = f"{self.url}/taxii2/redteam/collections/{COLLECTION_ID}/"
        return Collection(url, user=principal, password=self.tokens[principal])


def _principal(http: httpx.Client, pid: str, role: str, seed: int) -> str:
    key = EnvelopeSigner.from_seed(bytes([seed]) * 32)
    record = {"id": pid, "role": role, "jurisdiction": "GB", "name": pid,
              "public_key": base64.b64encode(key.public_key).decode()}  # fmt: skip
    http.post("/api/v1/admin/principals", json=record, headers=ADMIN).raise_for_status()
    issued = http.post("/api/v1/admin/tokens", json={"principal": pid}, headers=ADMIN)
    issued.raise_for_status()
    return str(issued.json()["token"])


def _seed(settings: Settings) -> list[tuple[str, str, float]]:
    """Four FR disclosures as GB holds them; what was stored, in order."""
    stored = []
    engine = open_engine(settings.db_url)
    try:
        with write_tx(engine) as conn:
            for n in range(4):
                state = replace(DISCLOSED, id=stable_id("vulnerability", "interop", str(n)))
                for obj in disclosure_objects(state):
                    row = put_object(conn, obj, owner="FR", audience=AMBER_GB, disclosure=state.id)
                    if row is not None:
                        stored.append((row.id, row.modified, row.date_added))
    finally:
        engine.dispose()
    return stored


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base: Path = tmp_path_factory.mktemp("taxii-interop")
    env = node_env(base / "node", "gb.taxii.test/log", jurisdiction="GB")
    with NodeProcess(env, base / "serve.log") as node, httpx.Client(base_url=node.url) as http:
        tokens = {
            "regulator:gb": _principal(http, "regulator:gb", "regulator", 1),
            "researcher:gb-red": _principal(http, "researcher:gb-red", "researcher", 2),
        }
        settings = Settings(data_dir=base / "node", jurisdiction="GB", origin="gb.taxii.test/log")
        yield Served(node.url, tokens, _seed(settings))


@pytest.fixture
def regulator(served: Served) -> Iterator[Collection]:
    """The collection as the GB regulator reads it (Basic: principal id and token)."""
    with served.collection("regulator:gb") as collection:
        yield collection


def test_discovery_api_root_and_collection(served: Served) -> None:
    server = Server(
        f"{served.url}/taxii2/", user="regulator:gb", password=served.tokens["regulator:gb"]
    )
    try:
        assert server.title
        (root,) = server.api_roots
        assert isinstance(root, ApiRoot)
        assert root.versions == ["application/taxii+json;version=2.1"]
        assert root.max_content_length > 0
        (collection,) = root.collections
        assert collection.id == COLLECTION_ID
        assert collection.can_read is True
        assert collection.can_write is False  # a regulator reads; researchers write
    finally:
        server.close()


def test_pages_deliver_every_object_exactly_once(served: Served, regulator: Collection) -> None:
    collection = regulator
    pages = list(as_pages(collection.get_objects, per_request=7))
    assert len(pages) > 2
    got = [o["id"] for page in pages for o in page.get("objects", [])]
    assert len(got) == len(set(got))  # none twice
    assert {i for i, _, _ in served.stored} <= set(got)  # none missed
    manifests = as_pages(collection.get_manifest, per_request=5)
    assert sorted(r["id"] for p in manifests for r in p["objects"]) == sorted(got)


def test_filters_by_type_id_and_added_after(served: Served, regulator: Collection) -> None:
    collection = regulator
    patterns = collection.get_objects(type="attack-pattern")["objects"]
    seeded = {i for i, _, _ in served.stored if i.startswith("attack-pattern--")}
    assert len(seeded) == 4
    assert seeded <= {o["id"] for o in patterns}
    assert {o["type"] for o in patterns} == {"attack-pattern"}
    some_id = served.stored[3][0]
    assert [o["id"] for o in collection.get_objects(id=some_id)["objects"]] == [some_id]
    middle = served.stored[len(served.stored) // 2]
    after = collection.get_objects(added_after=taxii_timestamp(middle[2]), limit=1000)
    later = [i for i, _, added in served.stored if added > middle[2]]
    mine = {i for i, _, _ in served.stored}  # a report posted meanwhile comes later still
    assert [o["id"] for o in after["objects"] if o["id"] in mine] == later
    assert middle[0] not in {o["id"] for o in after["objects"]}


def test_one_object_its_versions_and_the_public_view(served: Served, regulator: Collection) -> None:
    collection = regulator
    oid, modified, _ = served.stored[0]
    assert collection.get_object(oid)["objects"][0]["id"] == oid
    assert collection.object_versions(oid)["versions"] == [modified]
    with Collection(f"{served.url}/taxii2/redteam/collections/{COLLECTION_ID}/") as public:
        served_ids = {o["id"] for o in public.get_objects().get("objects", [])}
    assert not served_ids & {i for i, _, _ in served.stored}  # TLP:AMBER: not the public's


def test_a_researcher_adds_a_report_and_polls_its_status(served: Served) -> None:
    state = replace(REPORTED, id=stable_id("vulnerability", "interop", "posted"), origin="GB")
    wanted = ("vulnerability", "attack-pattern", "marking-definition")
    objects = [o for o in disclosure_objects(state) if o["type"] in wanted]
    with served.collection("researcher:gb-red") as collection:
        assert collection.can_write is True
        status = collection.add_objects({"objects": objects}, wait_for_completion=True)
    assert status.status == "complete"
    assert status.success_count == status.total_count == len(objects)
    assert status.failure_count == status.pending_count == 0


def test_an_exported_bundle_loads_into_stix2_and_filters(
    served: Served, regulator: Collection
) -> None:
    collection = regulator
    objects: list[dict[str, Any]] = []
    for page in as_pages(collection.get_objects, per_request=50):
        objects += page.get("objects", [])
    assert validate_objects(objects) == {}  # everything served passes stix2-validator
    store = stix2.MemoryStore(stix_data=objects, allow_custom=True)
    vulnerabilities = store.query([stix2.Filter("type", "=", "vulnerability")])
    seeded = {i for i, _, _ in served.stored if i.startswith("vulnerability--")}
    assert len(seeded) == 4
    assert seeded <= {v["id"] for v in vulnerabilities}
    assert {v["type"] for v in vulnerabilities} == {"vulnerability"}
    first = served.stored[0][0]
    assert store.get(first)["id"] == first
    markings = store.query([stix2.Filter("type", "=", "marking-definition")])
    assert {m["name"] for m in markings} >= {"TLP:AMBER"}
