"""TAXII 2.1 reads over the red-teaming repository (docs/design/0029, "TAXII 2.1").

The query code behind the node's TAXII server (``custodes.api.taxii`` serves it): the
request's filters (``added_after``, ``match[id|type|version|spec_version]``), pages in
``date_added`` order (``stix_objects.seq``), the opaque ``next`` token, and the status
resources of POSTs (``taxii_status``).

Every row passes ``custodes.redteam.tlp.can_read`` before it is served, counted or paged
over. For the public, SQL keeps only disclosed TLP:CLEAR rows (the audience JSON starts
with those two fields, see ``Audience``); for everyone else the rows are scanned without
their objects, the rule decides (once per distinct audience), and only the objects kept
are fetched. A page is filled from as many scans as it takes, and holds one readable row
more than it returns, so ``more`` is true only when another readable object exists.

``next`` is ``<payload>.<HMAC-SHA256>`` under a key derived from the node's entry key:
it names the last row served and binds the endpoint, the filters and the caller
(TAXII App. B), so a token replayed with other filters, or by another caller, is a 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, exists, insert, or_, select

from custodes.errors import BadRequest
from custodes.redteam.store import stix_objects, taxii_status
from custodes.redteam.tlp import Audience, Reader, can_read

__all__ = [
    "COLLECTION_ID",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "STIX_MEDIA_TYPE",
    "Filters",
    "Item",
    "Page",
    "Pager",
    "TaxiiQuery",
    "caller_key",
    "load_status",
    "parse_query",
    "parse_timestamp",
    "read_page",
    "save_status",
    "status_resource",
    "taxii_timestamp",
]

COLLECTION_ID = "5f0c7a3e-2d1b-4c8e-9a6f-3b7d2e1c0a94"  # the red-teaming repository
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
_MAX_SCAN = 5000  # rows read per scan at most
_PUBLIC_PREFIX = '{"tlp":"clear","stage":"disclosed",%'
_FIELDS = {
    "objects": {"added_after", "match[id]", "match[type]", "match[version]", "match[spec_version]"},
    "manifest": {
        "added_after",
        "match[id]",
        "match[type]",
        "match[version]",
        "match[spec_version]",
    },
    "object": {"added_after", "match[version]", "match[spec_version]"},
    "versions": {"added_after", "match[spec_version]"},
}


# -- timestamps ----------------------------------------------------------------------------
def taxii_timestamp(posix: float) -> str:
    """``posix`` (a ``date_added``) as TAXII writes it: microseconds, UTC, ``Z``."""
    moment = _EPOCH + timedelta(microseconds=round(posix * 1_000_000))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str, name: str = "added_after") -> float:
    """A TAXII/STIX timestamp as POSIX seconds (microseconds kept); 400 if malformed."""
    if not _TIMESTAMP.match(text):
        raise BadRequest(
            f"{name} must be a timestamp like 2026-01-02T03:04:05.000000Z, not {text!r}",
            code="bad_timestamp",
        )
    whole, _, fraction = text[:-1].partition(".")
    try:
        moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest(
            f"{name} is not a real date and time: {text!r}", code="bad_timestamp"
        ) from None
    micros = (moment - _EPOCH) // timedelta(microseconds=1) + int((fraction + "000000")[:6])
    return micros / 1_000_000


def _spellings(text: str) -> tuple[str, ...]:
    """The ways a STIX ``modified`` may spell the instant ``text`` names (s, ms, us)."""
    micros = round(parse_timestamp(text, "match[version]") * 1_000_000)
    moment = _EPOCH + timedelta(microseconds=micros)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    found = {text, base + moment.strftime(".%fZ")}
    if moment.microsecond % 1000 == 0:
        found.add(f"{base}.{moment.microsecond // 1000:03d}Z")
    if moment.microsecond == 0:
        found.add(base + "Z")
    return tuple(sorted(found))


# -- the request ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    """A request's filters; ``versions`` holds ``last``, ``first``, ``all`` or instants."""

    added_after: float | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()

    def bound(self, endpoint: str, caller: str) -> bytes:
        """What a ``next`` token is bound to: the endpoint, these filters, the caller."""
        text = orjson.dumps(
            [
                endpoint,
                caller,
                self.added_after,
                self.ids,
                self.types,
                self.versions,
                self.spec_versions,
            ]
        )
        return hashlib.sha256(text).digest()


@dataclass(frozen=True)
class TaxiiQuery:
    filters: Filters
    limit: int
    next: str | None


def _values(name: str, value: str) -> tuple[str, ...]:
    parts = tuple(v.strip() for v in value.split(","))
    if not all(parts):
        raise BadRequest(f"{name} has an empty value in {value!r}", code="bad_filter")
    return parts


def _optional(given: dict[str, str], name: str) -> tuple[str, ...]:
    return _values(name, given[name]) if name in given else ()


def _versions(value: str) -> tuple[str, ...]:
    versions = _values("match[version]", value)
    if "all" in versions and len(versions) > 1:
        raise BadRequest("match[version]=all stands alone", code="bad_filter")
    spelt: list[str] = []
    for version in versions:
        spelt += [version] if version in ("last", "first", "all") else _spellings(version)
    return tuple(spelt)


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or int(value) < 1:
        raise BadRequest(f"limit must be a positive integer, not {value!r}", code="bad_limit")
    return min(int(value), MAX_LIMIT)


def _single(items: Sequence[tuple[str, str]], endpoint: str) -> dict[str, str]:
    known = _FIELDS[endpoint] | {"limit", "next"}
    seen: dict[str, str] = {}
    for name, value in items:
        if name not in known:
            continue  # a filter this endpoint does not have is ignored (TAXII 3.5)
        if name in seen:
            raise BadRequest(f"{name} may appear once in a request", code="bad_filter")
        seen[name] = value
    return seen


def parse_query(endpoint: str, items: Sequence[tuple[str, str]]) -> TaxiiQuery:
    """The filters, limit and ``next`` of a request to ``endpoint`` (objects, manifest,
    object, versions) from its query items; 400 for a malformed one."""
    given = _single(items, endpoint)
    after = given.get("added_after")
    filters = Filters(
        added_after=None if after is None else parse_timestamp(after),
        ids=_optional(given, "match[id]"),
        types=_optional(given, "match[type]"),
        versions=_versions(given["match[version]"]) if "match[version]" in given else ("last",),
        spec_versions=_optional(given, "match[spec_version]"),
    )
    if endpoint == "versions":
        filters = replace(filters, versions=("all",))
    return TaxiiQuery(filters, _limit(given.get("limit")), given.get("next") or None)


def caller_key(reader: Reader) -> str:
    """Who a ``next`` token belongs to."""
    return reader.qualified or reader.kind


# -- next ----------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Pager:
    """Makes and checks ``next`` tokens under the node's key (``for_node``)."""

    key: bytes

    @classmethod
    def for_node(cls, entry_seed: bytes) -> Pager:
        return cls(hashlib.sha256(b"custodes.taxii.next.v1\x00" + entry_seed).digest())

    def token(self, after: int, bound: bytes) -> str:
        payload = str(after).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload, bound))}"

    def after(self, token: str, bound: bytes) -> int:
        """The row a token continues after; 400 unless it was made for this request."""
        payload_text, _, mac_text = token.partition(".")
        try:
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except ValueError:
            payload, mac = b"", b""
        if not payload.isdigit() or not hmac.compare_digest(mac, self._mac(payload, bound)):
            raise BadRequest(
                "next is not a token this server gave for this request: resend it with the "
                "same filters and credentials, or start again without next",
                code="bad_next",
            )
        return int(payload)

    def _mac(self, payload: bytes, bound: bytes) -> bytes:
        return hmac.new(self.key, bound + payload, hashlib.sha256).digest()


# -- reading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One stored version, as served: ``raw`` is the object's JSON (None for manifests)."""

    seq: int
    id: str
    modified: str
    type: str
    spec_version: str
    date_added: float
    raw: str | None = None

    def manifest_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "date_added": taxii_timestamp(self.date_added),
            "version": self.modified,
            "media_type": STIX_MEDIA_TYPE,
        }


@dataclass(frozen=True)
class Page:
    items: list[Item]
    more: bool
    next: str | None = None
    scanned: int = field(default=0, compare=False)  # rows read to fill it (benchmarks)

    @property
    def date_added_range(self) -> tuple[str, str] | None:
        if not self.items:
            return None
        return taxii_timestamp(self.items[0].date_added), taxii_timestamp(self.items[-1].date_added)


_S = stix_objects
_OTHER = stix_objects.alias("other")


def _version_clause(versions: tuple[str, ...]) -> Any:
    if "all" in versions:
        return None
    later = exists().where(_OTHER.c.id == _S.c.id, _OTHER.c.modified > _S.c.modified)
    earlier = exists().where(_OTHER.c.id == _S.c.id, _OTHER.c.modified < _S.c.modified)
    named = {"last": ~later, "first": ~earlier}
    clauses = [named[v] for v in versions if v in named]
    instants = [v for v in versions if v not in named]
    if instants:
        clauses.append(_S.c.modified.in_(instants))
    return or_(*clauses)


def _scan(filters: Filters, reader: Reader, after: int, batch: int) -> Select[Any]:
    query = select(
        _S.c.seq,
        _S.c.id,
        _S.c.modified,
        _S.c.type,
        _S.c.spec_version,
        _S.c.date_added,
        _S.c.audience,
    )
    conditions: list[Any] = [_S.c.seq > after]
    if filters.added_after is not None:
        conditions.append(_S.c.date_added > filters.added_after)
    if filters.ids:
        conditions.append(_S.c.id.in_(filters.ids))
    if filters.types:
        conditions.append(_S.c.type.in_(filters.types))
    if filters.spec_versions:
        conditions.append(_S.c.spec_version.in_(filters.spec_versions))
    version = _version_clause(filters.versions)
    if version is not None:
        conditions.append(version)
    if reader.kind == "public":  # the one prefilter SQL can do exactly
        conditions.append(_S.c.audience.like(_PUBLIC_PREFIX))
    return query.where(and_(*conditions)).order_by(_S.c.seq).limit(batch)


class _Rule:
    """``can_read`` once per distinct audience JSON."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.seen: dict[str, bool] = {}

    def allows(self, audience: str) -> bool:
        known = self.seen.get(audience)
        if known is None:
            known = self.seen[audience] = can_read(
                Audience.model_validate_json(audience), self.reader
            )
        return known


def _with_objects(conn: Connection, items: list[Item]) -> list[Item]:
    seqs = [i.seq for i in items]
    raw: dict[int, str] = {}
    for start in range(0, len(seqs), 500):
        chunk = seqs[start : start + 500]
        rows = conn.execute(select(_S.c.seq, _S.c.object).where(_S.c.seq.in_(chunk)))
        raw.update({row.seq: row.object for row in rows})
    return [replace(i, raw=raw[i.seq]) for i in items]


def _next_batch(needed: int, scanned: int, found: int, last: int) -> int:
    """Rows to scan for ``needed`` more readable ones, at the share readable so far (a
    quarter more, to finish in one scan); twice the last scan when none was readable."""
    if found == 0:
        return min(2 * last, _MAX_SCAN)
    return min(max(64, math.ceil(needed * scanned / found * 1.25)), _MAX_SCAN)


def _readable_rows(
    conn: Connection, filters: Filters, reader: Reader, after: int, want: int
) -> tuple[list[Item], int]:
    """Up to ``want`` readable rows after seq ``after``, and how many rows it scanned."""
    rule, found, scanned = _Rule(reader), [], 0
    batch = want  # exact when every row is readable; then sized from the share readable
    while True:
        rows = conn.execute(_scan(filters, reader, after, batch)).all()
        scanned += len(rows)
        for row in rows:
            if rule.allows(row.audience):
                found.append(
                    Item(row.seq, row.id, row.modified, row.type, row.spec_version, row.date_added)
                )
                if len(found) == want:
                    return found, scanned
        if len(rows) < batch:
            return found, scanned
        after, batch = rows[-1].seq, _next_batch(want - len(found), scanned, len(found), batch)


def read_page(
    conn: Connection,
    query: TaxiiQuery,
    reader: Reader,
    pager: Pager,
    *,
    endpoint: str,
    objects: bool = True,
) -> Page:
    """One page of what ``reader`` may read under ``query`` (``objects``: with their JSON)."""
    bound = query.filters.bound(endpoint, caller_key(reader))
    after = 0 if query.next is None else pager.after(query.next, bound)
    found, scanned = _readable_rows(conn, query.filters, reader, after, query.limit + 1)
    more = len(found) > query.limit
    items = found[: query.limit]
    if objects:
        items = _with_objects(conn, items)
    token = pager.token(items[-1].seq, bound) if more else None
    return Page(items, more, token, scanned)


# -- status resources ----------------------------------------------------------------------
def status_resource(
    status_id: str,
    *,
    requested_at: float,
    successes: Iterable[tuple[str, str]],
    failures: Iterable[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """A complete TAXII status: ``successes`` (id, version), ``failures`` (id, version,
    message); nothing is ever pending (a POST is handled before it is answered)."""
    done = [{"id": i, "version": v} for i, v in successes]
    failed = [{"id": i, "version": v, "message": m} for i, v, m in failures]
    return {
        "id": status_id,
        "status": "complete",
        "request_timestamp": taxii_timestamp(requested_at),
        "total_count": len(done) + len(failed),
        "success_count": len(done),
        "successes": done,
        "failure_count": len(failed),
        "failures": failed,
        "pending_count": 0,
        "pendings": [],
    }


def save_status(conn: Connection, status: dict[str, Any], caller: str, now: float) -> None:
    conn.execute(
        insert(taxii_status).values(
            id=status["id"], principal=caller, created_at=now, body=orjson.dumps(status).decode()
        )
    )


def load_status(conn: Connection, status_id: str, caller: str) -> dict[str, Any] | None:
    """The status ``caller`` posted (None for another's: it is not theirs to see).

    Statuses are kept, never pruned: TAXII asks for at least 24 hours."""
    row = conn.execute(select(taxii_status).where(taxii_status.c.id == status_id)).first()
    if row is None or row.principal != caller:
        return None
    body: dict[str, Any] = orjson.loads(row.body)
    return body
