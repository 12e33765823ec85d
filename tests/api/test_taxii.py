"""The TAXII 2.1 server in-process: every endpoint, its headers and errors, and who reads what.

One GB node per module and database. Objects are delivered FR-origin disclosures (as the
federation stores them), seeded with ``put_object``; the callers are principals
registered on the GB node with their API tokens.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from custodes.api import create_app
from custodes.api.taxii import MAX_CONTENT_LENGTH
from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.redteam.stix import disclosure_objects, stable_id
from custodes.redteam.store import put_object, stix_objects, taxii_status
from custodes.redteam.taxii import COLLECTION_ID
from custodes.redteam.tlp import MARKING_IDS, Audience
from custodes.registry.models import PrincipalRecord
from custodes.store.db import read_tx, write_tx
from tests.api.support import node_of
from tests.databases import database_url, node_settings
from tests.redteam.lifecycle import REPORTED

TAXII = "application/taxii+json;version=2.1"
ROOT = "/taxii2/redteam/"
COLL = f"{ROOT}collections/{COLLECTION_ID}/"
ERROR_KEYS = {"title", "description", "error_id", "error_code", "http_status",
              "external_details", "details"}  # fmt: skip

# The disclosures: FR's, as delivered to GB. (key, audience)
AUDIENCES = {
    "clear": Audience(tlp="clear", stage="disclosed", origin="FR", reporter="researcher:fr-rep"),
    "green": Audience(tlp="green", stage="disclosed", origin="FR", reporter="researcher:fr-rep"),
    "amber-gb": Audience(tlp="amber", stage="disclosed", origin="FR", parties=("GB",)),
    "amber-au": Audience(tlp="amber", stage="disclosed", origin="FR", parties=("AU",)),
    "strict-gb": Audience(tlp="amber+strict", stage="disclosed", origin="FR", parties=("GB",)),
    "red-gb": Audience(
        tlp="red",
        stage="disclosed",
        origin="FR",
        parties=("GB",),
        principals=("GB/regulator:gb",),
    ),
    "reported": Audience(
        tlp="amber", stage="reported", origin="FR", reporter="researcher:fr-rep", parties=("GB",)
    ),
}
for _key in ("amber-gb", "amber-au", "strict-gb", "red-gb"):
    AUDIENCES[_key] = AUDIENCES[_key].model_copy(update={"reporter": "researcher:fr-rep"})

# Who asks: (principal id, role, jurisdiction); None is the public.
READERS: dict[str, tuple[str, str, str] | None] = {
    "public": None,
    "gb-regulator": ("regulator:gb", "regulator", "GB"),
    "gb-operator": ("operator:gb-acme", "operator", "GB"),
    "gb-researcher": ("researcher:gb-red", "researcher", "GB"),
    "fr-regulator": ("regulator:fr", "regulator", "FR"),
    "au-regulator": ("regulator:au", "regulator", "AU"),
    "reporter": ("researcher:fr-rep", "researcher", "FR"),
}

# THE MATRIX, written by hand from the TLP 2.0 rules (custodes.redteam.tlp): before
# disclosure only the reporter and the origin's (FR's) regulators read; CLEAR everyone;
# GREEN every party's principals; AMBER the named party's principals, any role;
# AMBER+STRICT the named party's regulators; RED the named principals.
Y, N = True, False
MATRIX: dict[str, dict[str, bool]] = {
    #                clear green amber-gb amber-au strict-gb red-gb reported
    "public":        dict(zip(AUDIENCES, (Y, N, N, N, N, N, N), strict=True)),
    "gb-regulator":  dict(zip(AUDIENCES, (Y, Y, Y, N, Y, Y, N), strict=True)),
    "gb-operator":   dict(zip(AUDIENCES, (Y, Y, Y, N, N, N, N), strict=True)),
    "gb-researcher": dict(zip(AUDIENCES, (Y, Y, Y, N, N, N, N), strict=True)),
    "fr-regulator":  dict(zip(AUDIENCES, (Y, Y, Y, Y, Y, Y, Y), strict=True)),
    "au-regulator":  dict(zip(AUDIENCES, (Y, Y, N, Y, N, N, N), strict=True)),
    "reporter":      dict(zip(AUDIENCES, (Y, Y, Y, Y, Y, Y, Y), strict=True)),
}  # fmt: skip


def vulnerability(key: str, tlp: str) -> dict[str, Any]:
    return {
        "type": "vulnerability",
        "spec_version": "2.1",
        "id": f"vulnerability--{uuid.uuid5(uuid.NAMESPACE_URL, key)}",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": f"jailbreak {key}",
        "object_marking_refs": [MARKING_IDS.get(tlp, MARKING_IDS["red"])],
    }


@dataclass(frozen=True)
class World:
    client: TestClient
    tokens: dict[str, str]  # reader -> API token
    ids: dict[str, str]  # audience key -> object id

    @property
    def node(self) -> Node:
        return node_of(self.client)

    def headers(self, reader: str, **extra: str) -> dict[str, str]:
        found = {"Accept": TAXII, **extra}
        if reader in self.tokens:
            found["Authorization"] = f"Bearer {self.tokens[reader]}"
        return found

    def get(self, path: str, reader: str = "public", **params: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers(reader), params=params)


def _register(node: Node, pid: str, role: str, jurisdiction: str, seed: int) -> str:
    key = EnvelopeSigner.from_seed(bytes([seed]) * 32)
    public = base64.b64encode(key.public_key).decode()
    record = PrincipalRecord(
        id=pid, role=role, jurisdiction=jurisdiction, name=pid, public_key=public
    )  # type: ignore[arg-type]
    node.registry.register_principal(record)
    return str(node.tokens.issue(pid, None, 3600)["token"])


def _seed(node: Node) -> dict[str, str]:
    ids: dict[str, str] = {}
    with write_tx(node.engine) as conn:
        for key, audience in AUDIENCES.items():
            obj = vulnerability(key, audience.tlp)
            put_object(conn, obj, owner="FR", audience=audience, disclosure=obj["id"])
            ids[key] = obj["id"]
        later = {**vulnerability("clear", "clear"), "modified": "2026-02-01T00:00:00.000Z"}
        put_object(conn, later, owner="FR", audience=AUDIENCES["clear"], disclosure=later["id"])
    return ids


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    base: Path = tmp_path_factory.mktemp("taxii")
    settings: Settings = node_settings(base, database_url(request, base, "api_taxii_"))
    settings = settings.model_copy(update={"jurisdiction": "GB"})
    with TestClient(create_app(settings)) as client:
        node = node_of(client)
        tokens = {
            name: _register(node, *who, seed=n + 1)
            for n, (name, who) in enumerate(READERS.items())
            if who is not None
        }
        yield World(client, tokens, _seed(node))


def assert_taxii_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == TAXII
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["http_status"] == str(status)
    assert body["title"]
    assert body["description"]
    assert body["error_id"]
    return dict(body)


def stored(world: World) -> tuple[int, int, int]:
    with read_tx(world.node.engine) as conn:
        objects = conn.execute(select(func.count()).select_from(stix_objects)).scalar_one()
        statuses = conn.execute(select(func.count()).select_from(taxii_status)).scalar_one()
    return objects, statuses, world.node.store.sequenced_size()


# -- the access matrix ----------------------------------------------------------------------
@pytest.mark.parametrize("reader", list(READERS))
def test_who_reads_what(world: World, reader: str) -> None:
    expected = {world.ids[k] for k, readable in MATRIX[reader].items() if readable}
    only = {"match[version]": "all", "match[type]": "vulnerability"}  # not the shared objects
    objects = world.get(f"{COLL}objects/", reader, **only)
    assert objects.status_code == 200
    assert {o["id"] for o in objects.json().get("objects", [])} == expected
    manifest = world.get(f"{COLL}manifest/", reader, **only)
    assert {o["id"] for o in manifest.json().get("objects", [])} == expected
    for key, oid in world.ids.items():
        one = world.get(f"{COLL}objects/{oid}/", reader)
        versions = world.get(f"{COLL}objects/{oid}/versions/", reader)
        if MATRIX[reader][key]:
            assert one.status_code == 200
            assert one.json()["objects"][0]["id"] == oid
            assert versions.status_code == 200
            assert versions.json()["versions"]
        else:
            assert_taxii_error(one, 404)
            assert_taxii_error(versions, 404)


# -- discovery, root, collections -----------------------------------------------------------
def test_discovery_root_and_the_collection(world: World) -> None:
    discovery = world.get("/taxii2/")
    assert discovery.status_code == 200
    assert discovery.headers["content-type"] == TAXII
    assert discovery.json()["api_roots"] == [f"http://testserver{ROOT}"]
    root = world.get(ROOT).json()
    assert root["versions"] == [TAXII]
    assert root["max_content_length"] == MAX_CONTENT_LENGTH
    listed = world.get(f"{ROOT}collections/").json()["collections"]
    assert [c["id"] for c in listed] == [COLLECTION_ID]
    public = world.get(COLL).json()
    assert public["can_read"] is True
    assert public["can_write"] is False
    assert public["media_types"] == ["application/stix+json;version=2.1"]
    assert world.get(COLL, "gb-researcher").json()["can_write"] is True
    assert world.get(COLL, "gb-regulator").json()["can_write"] is False


def test_versions_and_the_date_added_headers(world: World) -> None:
    oid = world.ids["clear"]
    versions = world.get(f"{COLL}objects/{oid}/versions/")
    assert versions.json() == {
        "more": False,
        "versions": ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"],
    }
    first = versions.headers["X-TAXII-Date-Added-First"]
    last = versions.headers["X-TAXII-Date-Added-Last"]
    assert first < last
    assert first.endswith("Z")
    assert len(first) == len("2026-01-01T00:00:00.000000Z")
    latest = world.get(f"{COLL}objects/{oid}/").json()["objects"]
    assert [o["modified"] for o in latest] == ["2026-02-01T00:00:00.000Z"]
    for path in (f"{COLL}objects/", f"{COLL}manifest/", f"{COLL}objects/{oid}/"):
        response = world.get(path)
        assert response.headers["X-TAXII-Date-Added-Last"], path
    record = world.get(f"{COLL}manifest/", **{"match[id]": oid}).json()["objects"][0]
    assert record["version"] == "2026-02-01T00:00:00.000Z"
    assert record["media_type"] == "application/stix+json;version=2.1"
    assert record["date_added"] == last


def test_pages_follow_next_and_an_empty_result_is_an_empty_envelope(world: World) -> None:
    vulnerabilities = {"match[type]": "vulnerability"}
    first = world.get(f"{COLL}objects/", "fr-regulator", limit="4", **vulnerabilities).json()
    assert first["more"] is True
    assert len(first["objects"]) == 4
    rest = world.get(
        f"{COLL}objects/", "fr-regulator", limit="4", next=first["next"], **vulnerabilities
    ).json()
    assert rest["more"] is False
    assert len(rest["objects"]) == len(AUDIENCES) - 4
    none = world.get(f"{COLL}objects/", **{"match[type]": "x-unknown-type"})
    assert none.status_code == 200
    assert none.json() == {}
    assert "X-TAXII-Date-Added-First" not in none.headers


def test_a_next_reused_with_other_filters_or_by_another_caller_is_a_400(world: World) -> None:
    first = world.get(f"{COLL}objects/", "gb-regulator", limit="1").json()
    other_filters = world.get(
        f"{COLL}objects/",
        "gb-regulator",
        limit="1",
        next=first["next"],
        **{"match[type]": "report"},
    )
    assert assert_taxii_error(other_filters, 400)["error_code"] == "bad_next"
    other_caller = world.get(f"{COLL}objects/", "gb-operator", limit="1", next=first["next"])
    assert_taxii_error(other_caller, 400)


# -- negotiation, authentication, errors ----------------------------------------------------
@pytest.mark.parametrize(
    "accept", ["application/taxii+json", "*/*", "application/taxii+json; version=2.1", None]
)
def test_taxii_media_ranges_are_accepted(world: World, accept: str | None) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = world.client.get(f"{COLL}objects/", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == TAXII


@pytest.mark.parametrize(
    "accept", ["application/json", "application/taxii+json;version=2.0", "text/html"]
)
def test_an_accept_that_is_not_taxii_2_1_is_a_406(world: World, accept: str) -> None:
    assert_taxii_error(world.client.get(ROOT, headers={"Accept": accept}), 406)


def test_basic_authentication_with_the_principal_id_and_its_token(world: World) -> None:
    token = world.tokens["gb-regulator"]
    good = ("regulator:gb", token)
    seen = world.client.get(f"{COLL}objects/", auth=good, headers={"Accept": TAXII})
    assert {world.ids["red-gb"], world.ids["strict-gb"]} <= {
        o["id"] for o in seen.json()["objects"]
    }
    wrong_user = ("regulator:au", token)
    refused = world.client.get(COLL, auth=wrong_user, headers={"Accept": TAXII})
    assert_taxii_error(refused, 401)


@pytest.mark.parametrize(
    "authorization", ["Bearer cst_nope_nope", "Bearer not-a-token", "Basic !!!", "Digest x"]
)
def test_bad_credentials_are_a_401_with_a_challenge(world: World, authorization: str) -> None:
    response = world.client.get(
        f"{COLL}objects/", headers={"Accept": TAXII, "Authorization": authorization}
    )
    assert_taxii_error(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="custodes", Bearer'


@pytest.mark.parametrize(
    "params",
    [
        {"added_after": "last tuesday"},
        {"limit": "0"},
        {"match[version]": "not-a-time"},
        {"next": "forged"},
    ],
)
def test_malformed_parameters_are_a_400(world: World, params: dict[str, str]) -> None:
    assert_taxii_error(world.get(f"{COLL}objects/", **params), 400)


@pytest.mark.parametrize(
    "path",
    [
        "/taxii2/nothing/",
        f"{ROOT}collections/{uuid.uuid4()}/objects/",
        f"{COLL}objects/vulnerability--{uuid.uuid4()}/",
        f"{ROOT}status/{uuid.uuid4()}/",
        f"{COLL}objects",
    ],
)
def test_what_is_not_there_is_a_taxii_404(world: World, path: str) -> None:
    assert_taxii_error(world.get(path, "gb-researcher"), 404)


def test_a_method_taxii_does_not_define_is_a_405_in_taxii_shape(world: World) -> None:
    response = world.client.put(f"{COLL}objects/", headers={"Accept": TAXII})
    assert_taxii_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_nothing_is_ever_deleted(world: World) -> None:
    before = stored(world)
    readable = world.ids["clear"]
    forbidden = world.client.delete(
        f"{COLL}objects/{readable}/", headers=world.headers("gb-researcher")
    )
    assert assert_taxii_error(forbidden, 403)["error_code"] == "delete_forbidden"
    hidden = world.client.delete(
        f"{COLL}objects/{world.ids['red-gb']}/", headers=world.headers("public")
    )
    assert_taxii_error(hidden, 404)
    assert stored(world) == before


# -- POST refusals: nothing written ---------------------------------------------------------
def envelope(*objects: dict[str, Any]) -> bytes:
    return orjson.dumps({"objects": list(objects)})


def post(world: World, reader: str, body: bytes, content_type: str = TAXII) -> httpx.Response:
    headers = world.headers(reader, **{"Content-Type": content_type})
    return world.client.post(f"{COLL}objects/", content=body, headers=headers)


@pytest.mark.parametrize(
    ("reader", "body", "content_type", "status"),
    [
        ("gb-researcher", b'{"objects": []}', "application/json", 415),
        ("gb-researcher", b'{"objects": []}', "application/stix+json;version=2.1", 415),
        ("public", b'{"objects": []}', TAXII, 401),
        ("gb-regulator", b'{"objects": []}', TAXII, 403),
        ("gb-operator", b'{"objects": []}', TAXII, 403),
        ("gb-researcher", b"{not json", TAXII, 400),
        ("gb-researcher", b'{"objects": []}', TAXII, 422),
        ("gb-researcher", b'{"objects": "many"}', TAXII, 422),
        ("gb-researcher", b'[{"type": "vulnerability"}]', TAXII, 422),
        ("gb-researcher", b" " * (MAX_CONTENT_LENGTH + 1), TAXII, 413),
    ],
)
def test_refused_posts_write_nothing(
    world: World, reader: str, body: bytes, content_type: str, status: int
) -> None:
    before = stored(world)
    assert_taxii_error(post(world, reader, body, content_type), status)
    assert stored(world) == before


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "vulnerability", "spec_version": "2.1", "id": "vulnerability--not-a-uuid",
         "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
         "name": "x"},
        {"type": "vulnerability", "spec_version": "2.1",
         "id": f"vulnerability--{uuid.uuid4()}", "name": "no dates"},
    ],
)  # fmt: skip
def test_invalid_stix_is_a_422_naming_the_object(world: World, bad: dict[str, Any]) -> None:
    before = stored(world)
    error = assert_taxii_error(post(world, "gb-researcher", envelope(bad)), 422)
    assert error["error_code"] == "invalid_stix"
    assert bad["id"] in error["details"]["invalid"]
    assert stored(world) == before


def report_objects(name: str) -> list[dict[str, Any]]:
    """A researcher's report as STIX: the vulnerability, the attack-pattern with the
    probe, their markings (A's builders, from tests/redteam/lifecycle.py's report)."""
    state = replace(REPORTED, id=stable_id("vulnerability", "taxii-api", name), origin="GB")
    wanted = ("vulnerability", "attack-pattern", "marking-definition")
    return [o for o in disclosure_objects(state) if o["type"] in wanted]


def test_a_researchers_report_is_accepted_with_a_status_for_its_poster(world: World) -> None:
    objects = report_objects("accepted")
    posted = post(world, "gb-researcher", envelope(*objects))
    assert posted.status_code == 202, posted.text
    assert posted.headers["content-type"] == TAXII
    status = posted.json()
    assert status["status"] == "complete"
    assert status["total_count"] == status["success_count"] == len(objects)
    assert status["failure_count"] == status["pending_count"] == 0
    assert {s["id"] for s in status["successes"]} == {o["id"] for o in objects}
    path = f"{ROOT}status/{status['id']}/"
    assert world.get(path, "gb-researcher").json() == status
    assert_taxii_error(world.get(path, "gb-regulator"), 404)  # not the poster
    assert_taxii_error(world.get(path), 404)
    vulnerability = objects[0]["id"]
    assert world.get(f"{COLL}objects/{vulnerability}/", "gb-researcher").status_code == 200
    assert world.get(f"{COLL}objects/{vulnerability}/", "gb-regulator").status_code == 200
    assert_taxii_error(world.get(f"{COLL}objects/{vulnerability}/"), 404)  # not disclosed


def test_a_report_the_intake_refuses_is_a_taxii_422_with_nothing_written(world: World) -> None:
    objects = [o for o in report_objects("refused") if o["type"] != "attack-pattern"]
    before = stored(world)
    assert_taxii_error(post(world, "gb-researcher", envelope(*objects)), 422)
    assert stored(world) == before
