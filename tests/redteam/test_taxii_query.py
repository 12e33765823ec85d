"""The TAXII query code over the object store: filters, pages, ``next``, statuses.

Runs on SQLite and PostgreSQL (``db_url``). Objects are hand-written STIX dicts stored
with ``put_object`` at chosen ``date_added`` instants.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import orjson
import pytest
from sqlalchemy import Engine

from custodes.errors import BadRequest
from custodes.redteam.store import put_object
from custodes.redteam.taxii import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    Pager,
    caller_key,
    load_status,
    parse_query,
    parse_timestamp,
    read_page,
    save_status,
    status_resource,
    taxii_timestamp,
)
from custodes.redteam.tlp import Audience, Reader
from custodes.store.db import open_engine, read_tx, upgrade, write_tx

T0 = 1_790_000_000.0
PAGER = Pager.for_node(b"\x01" * 32)
PUBLIC = Reader.public()
GB_REGULATOR = Reader("principal", party="GB", principal="regulator:gb", role="regulator")
FR_REGULATOR = Reader("principal", party="FR", principal="regulator:fr", role="regulator")
CLEAR = Audience(tlp="clear", stage="disclosed", origin="GB")
GREEN = Audience(tlp="green", stage="disclosed", origin="GB")
AMBER_GB = Audience(tlp="amber", stage="disclosed", origin="DE", parties=("GB",))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = open_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def stix(
    kind: str = "vulnerability", modified: str = "2026-01-01T00:00:00.000Z", **kw: str
) -> dict[str, str]:
    return {
        "type": kind,
        "spec_version": "2.1",
        "id": kw.pop("id", f"{kind}--{uuid.uuid4()}"),
        "created": "2026-01-01T00:00:00.000Z",
        "modified": modified,
        "name": kw.pop("name", "a jailbreak"),
        **kw,
    }


def seed(engine: Engine, rows: list[tuple[dict[str, str], Audience]]) -> list[dict[str, str]]:
    with write_tx(engine) as conn:
        for n, (obj, audience) in enumerate(rows):
            put_object(conn, obj, owner=audience.origin, audience=audience, now=T0 + n)
    return [obj for obj, _ in rows]


def page(
    engine: Engine, reader: Reader, items: list[tuple[str, str]], endpoint: str = "objects"
) -> Page:
    with read_tx(engine) as conn:
        return read_page(conn, parse_query(endpoint, items), reader, PAGER, endpoint=endpoint)


def read_all(engine: Engine, reader: Reader, items: list[tuple[str, str]]) -> list[Page]:
    pages = [page(engine, reader, items)]
    while pages[-1].more:
        assert pages[-1].next is not None  # taxii2-client loops forever without one
        pages.append(page(engine, reader, [*items, ("next", pages[-1].next)]))
    return pages


def ids(p: Page) -> list[str]:
    return [i.id for i in p.items]


# -- timestamps and parameters ----------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["2026-12-04T01:02:03.000000Z", "2026-12-04T01:02:03.123456Z", "1999-01-01T00:00:00.999999Z"],
)
def test_timestamps_round_trip_at_microseconds(text: str) -> None:
    assert taxii_timestamp(parse_timestamp(text)) == text


def test_a_timestamp_in_seconds_or_milliseconds_reads_as_the_same_instant() -> None:
    assert parse_timestamp("2026-12-04T01:02:03Z") == parse_timestamp("2026-12-04T01:02:03.000Z")
    assert taxii_timestamp(parse_timestamp("2026-12-04T01:02:03.5Z")).endswith("03.500000Z")


@pytest.mark.parametrize(
    "items",
    [
        [("added_after", "yesterday")],
        [("added_after", "2026-13-40T00:00:00Z")],
        [("limit", "0")],
        [("limit", "-3")],
        [("limit", "ten")],
        [("match[type]", "vulnerability"), ("match[type]", "report")],
        [("match[version]", "all,last")],
        [("match[version]", "2026-01-01")],
        [("match[id]", "a,,b")],
    ],
)
def test_malformed_parameters_are_refused(items: list[tuple[str, str]]) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_query("objects", items)
    assert refused.value.status == 400


def test_limit_defaults_and_is_capped() -> None:
    assert parse_query("objects", []).limit == DEFAULT_LIMIT
    assert parse_query("objects", [("limit", "999999")]).limit == MAX_LIMIT
    assert parse_query("objects", [("limit", "7")]).limit == 7


def test_a_filter_the_endpoint_lacks_is_ignored() -> None:
    assert parse_query("versions", [("match[type]", "x")]).filters.types == ()
    assert parse_query("versions", []).filters.versions == ("all",)


# -- pages ------------------------------------------------------------------------------------
def test_pages_cover_every_object_once_in_date_added_order(engine: Engine) -> None:
    objects = seed(engine, [(stix(), CLEAR) for _ in range(7)])
    pages = read_all(engine, PUBLIC, [("limit", "3")])
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in ids(p)] == [o["id"] for o in objects]
    assert pages[-1].next is None
    first = pages[0].items
    assert pages[0].date_added_range == (
        taxii_timestamp(T0),
        taxii_timestamp(first[-1].date_added),
    )


def test_what_a_reader_may_not_read_is_never_served_counted_or_paged(engine: Engine) -> None:
    rows = [(stix(), GREEN if n % 5 else CLEAR) for n in range(25)]
    objects = seed(engine, rows)
    clear = [o["id"] for o, (_, a) in zip(objects, rows, strict=True) if a is CLEAR]
    only = page(engine, PUBLIC, [("limit", "5")])
    assert ids(only) == clear
    assert only.more is False  # five CLEAR objects: nothing more for the public
    everything = read_all(engine, GB_REGULATOR, [("limit", "10")])
    assert [len(p.items) for p in everything] == [10, 10, 5]


def test_a_page_is_filled_past_rows_the_reader_may_not_read(engine: Engine) -> None:
    rows = [(stix(), AMBER_GB) for _ in range(30)] + [(stix(), GREEN) for _ in range(3)]
    objects = seed(engine, rows)
    filled = page(engine, FR_REGULATOR, [("limit", "2")])
    assert ids(filled) == [o["id"] for o in objects[30:32]]
    assert filled.more is True
    last = page(engine, FR_REGULATOR, [("limit", "2"), ("next", filled.next or "")])
    assert ids(last) == [objects[32]["id"]]
    assert last.more is False


def test_the_object_is_served_as_stored(engine: Engine) -> None:
    (obj,) = seed(engine, [(stix(), CLEAR)])
    (item,) = page(engine, PUBLIC, []).items
    assert item.raw is not None
    assert orjson.loads(item.raw) == obj


# -- filters ----------------------------------------------------------------------------------
def test_filters_by_type_id_spec_version_and_added_after(engine: Engine) -> None:
    vuln, pattern, report = seed(
        engine, [(stix(), CLEAR), (stix("attack-pattern"), CLEAR), (stix("report"), CLEAR)]
    )
    assert ids(page(engine, PUBLIC, [("match[type]", "attack-pattern,report")])) == [
        pattern["id"],
        report["id"],
    ]
    assert ids(page(engine, PUBLIC, [("match[type]", "x-not-a-stix-type")])) == []
    assert ids(page(engine, PUBLIC, [("match[id]", f"{report['id']},{vuln['id']}")])) == [
        vuln["id"],
        report["id"],
    ]
    assert ids(page(engine, PUBLIC, [("match[spec_version]", "2.0")])) == []
    assert len(page(engine, PUBLIC, [("match[spec_version]", "2.1")]).items) == 3
    after = taxii_timestamp(T0 + 1)
    assert ids(page(engine, PUBLIC, [("added_after", after)])) == [report["id"]]


def test_versions_last_by_default_first_all_or_exact(engine: Engine) -> None:
    oid = f"vulnerability--{uuid.uuid4()}"
    stamps = ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"]
    seed(engine, [(stix(id=oid, modified=m), CLEAR) for m in stamps])

    def versions(*items: tuple[str, str]) -> list[str]:
        return [i.modified for i in page(engine, PUBLIC, list(items)).items]

    assert versions() == [stamps[2]]
    assert versions(("match[version]", "first")) == [stamps[0]]
    assert versions(("match[version]", "first,last")) == [stamps[0], stamps[2]]
    assert versions(("match[version]", "all")) == stamps
    assert versions(("match[version]", "2026-02-01T00:00:00Z")) == [stamps[1]]
    assert versions(("match[version]", "2026-02-01T00:00:00.000000Z")) == [stamps[1]]
    assert versions(("match[version]", "2026-02-02T00:00:00.000Z")) == []
    assert [i.modified for i in page(engine, PUBLIC, [], endpoint="versions").items] == stamps


# -- next -------------------------------------------------------------------------------------
def test_next_is_bound_to_its_query_and_its_caller(engine: Engine) -> None:
    seed(engine, [(stix(), CLEAR) for _ in range(4)])
    first = page(engine, GB_REGULATOR, [("limit", "2"), ("match[type]", "vulnerability")])
    assert first.next is not None
    token = ("next", first.next)
    same = page(engine, GB_REGULATOR, [("limit", "2"), ("match[type]", "vulnerability"), token])
    assert len(same.items) == 2
    refusals = [
        (GB_REGULATOR, [("match[type]", "report"), token]),  # other filters
        (GB_REGULATOR, [token]),  # no filter at all
        (FR_REGULATOR, [("match[type]", "vulnerability"), token]),  # another principal
        (PUBLIC, [("match[type]", "vulnerability"), token]),  # the public
        (GB_REGULATOR, [("match[type]", "vulnerability"), ("next", first.next[:-2] + "AA")]),
        (GB_REGULATOR, [("match[type]", "vulnerability"), ("next", "garbage")]),
    ]
    for reader, items in refusals:
        with pytest.raises(BadRequest) as refused:
            page(engine, reader, items)
        assert refused.value.code == "bad_next"
    with pytest.raises(BadRequest):  # the same filters on another endpoint
        page(engine, GB_REGULATOR, [("match[type]", "vulnerability"), token], "manifest")


def test_another_nodes_next_is_refused(engine: Engine) -> None:
    seed(engine, [(stix(), CLEAR) for _ in range(3)])
    first = page(engine, PUBLIC, [("limit", "1")])
    query = parse_query("objects", [("limit", "1"), ("next", first.next or "")])
    with read_tx(engine) as conn, pytest.raises(BadRequest):
        read_page(conn, query, PUBLIC, Pager.for_node(b"\x02" * 32), endpoint="objects")


# -- status resources -------------------------------------------------------------------------
def test_a_status_is_served_to_its_poster_only(engine: Engine) -> None:
    status = status_resource("s-1", requested_at=T0, successes=[("vulnerability--x", "v1")])
    assert status["total_count"] == status["success_count"] == 1
    assert status["failure_count"] == status["pending_count"] == 0
    poster = caller_key(replace(GB_REGULATOR, principal="researcher:eve", role="researcher"))
    with write_tx(engine) as conn:
        save_status(conn, status, poster, T0)
    with read_tx(engine) as conn:
        assert load_status(conn, "s-1", poster) == status
        assert load_status(conn, "s-1", caller_key(GB_REGULATOR)) is None
        assert load_status(conn, "s-2", poster) is None
