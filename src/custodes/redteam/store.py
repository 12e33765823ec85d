"""The red-teaming repository's tables (migration 0015, docs/design/0029).

- ``redteam_openings``: the clear body and salt behind each logged ``RedteamAct`` of
  this node, keyed by log index, written in the transaction that sequences the act (an
  acknowledged act has its body durable too). Authoritative beside the log, as the
  decision openings are; never sent to anyone not entitled.
- ``redteam_disclosures``: each disclosure this node knows: its stage, TLP, audience and
  the bodies so far. Written by the origin's service in the act's transaction, and by
  the deliveries that bring another origin's disclosure here.
- ``redteam_exposures``: each affected agent's status per disclosure. Written by the
  agent's home in the status act's transaction, and by deliveries elsewhere.
- ``stix_objects``: the TAXII store: every version of every STIX object this node
  serves, its own (``owner`` = this party) and those delivered by their owners, each
  with its ``Audience``. ``seq`` orders them as added (TAXII's ``date_added`` order);
  ``(id, modified)`` is unique, so a version delivered twice is stored once.
- ``taxii_status``: the status resources of TAXII POSTs (kept 24 h and more).
- ``redteam_sync``: how far this node has pulled each peer's own objects (catch-up
  after an outage).

An object id has one owner, the node that made it: the origin owns the disclosure's
objects, an agent's home owns that agent's sighting. Only the owner makes a new version,
so an id never forks across nodes; versions are told apart by ``modified``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
)

from custodes.redteam.tlp import Audience
from custodes.store.db import BigId, metadata

__all__ = [
    "REDTEAM_TABLES",
    "StoredObject",
    "put_object",
    "redteam_disclosures",
    "redteam_exposures",
    "redteam_openings",
    "redteam_sync",
    "stix_objects",
    "stored_object",
    "taxii_status",
]

redteam_openings = Table(
    "redteam_openings",
    metadata,
    Column("idx", BigId, primary_key=True, autoincrement=False),
    Column("disclosure", String(64), nullable=False, index=True),
    Column("op", String(16), nullable=False),
    Column("content", String(71), nullable=False),
    Column("salt", String(128), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON
)

redteam_disclosures = Table(
    "redteam_disclosures",
    metadata,
    Column("id", String(64), primary_key=True),  # vulnerability--<uuid4>
    Column("origin", String(2), nullable=False),
    Column("stage", String(16), nullable=False),  # reported | triaged | disclosed
    Column("tlp", String(16), nullable=False),
    Column("audience", Text, nullable=False),  # Audience, JSON
    Column("severity", String(16), nullable=True),
    Column("title", Text, nullable=False),
    Column("reporter", String(256), nullable=True),
    Column("embargo_until", Float, nullable=True),
    Column("report", Text, nullable=False),  # ReportBody, JSON
    Column("triage", Text, nullable=True),  # TriageBody, JSON
    Column("disclose", Text, nullable=True),  # DiscloseBody, JSON
    Column("summary", Text, nullable=True),  # SummaryBody, JSON
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("entry_index", BigInteger, nullable=True),  # the latest act's, at the origin
)

redteam_exposures = Table(
    "redteam_exposures",
    metadata,
    Column("disclosure", String(64), primary_key=True),
    Column("agent_id", String(128), primary_key=True),
    Column("home", String(2), nullable=False),
    Column("operator", String(128), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("evidence", Text, nullable=True),  # LogRef, JSON
    Column("note", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("entry_index", BigInteger, nullable=True),  # the latest status act's, at home
    Index("ix_redteam_exposures_agent", "agent_id"),
)

stix_objects = Table(
    "stix_objects",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("id", String(128), nullable=False),
    Column("modified", String(32), nullable=False),  # the version: STIX timestamp
    Column("type", String(64), nullable=False),
    Column("spec_version", String(8), nullable=False),
    Column("date_added", Float, nullable=False),  # POSIX seconds, microseconds
    Column("owner", String(2), nullable=False),
    Column("disclosure", String(64), nullable=True),
    Column("audience", Text, nullable=False),  # Audience, JSON
    Column("object", Text, nullable=False),  # the STIX object, JSON
    UniqueConstraint("id", "modified", name="uq_stix_objects_version"),
    Index("ix_stix_objects_id", "id"),
    Index("ix_stix_objects_type", "type"),
    Index("ix_stix_objects_date_added", "date_added"),
    Index("ix_stix_objects_owner_seq", "owner", "seq"),
)

taxii_status = Table(
    "taxii_status",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("principal", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("body", Text, nullable=False),  # the status resource, JSON
)

redteam_sync = Table(
    "redteam_sync",
    metadata,
    Column("party", String(2), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),  # the peer's seq pulled up to
    Column("updated_at", Float, nullable=False),
)

REDTEAM_TABLES = (
    "redteam_openings",
    "redteam_disclosures",
    "redteam_exposures",
    "stix_objects",
    "taxii_status",
    "redteam_sync",
)


@dataclass(frozen=True)
class StoredObject:
    """One stored version of a STIX object."""

    seq: int
    id: str
    modified: str
    type: str
    spec_version: str
    date_added: float
    owner: str
    disclosure: str | None
    audience: Audience
    object: dict[str, Any]


def stored_object(row: Any) -> StoredObject:
    return StoredObject(
        seq=row.seq,
        id=row.id,
        modified=row.modified,
        type=row.type,
        spec_version=row.spec_version,
        date_added=row.date_added,
        owner=row.owner,
        disclosure=row.disclosure,
        audience=Audience.model_validate_json(row.audience),
        object=orjson.loads(row.object),
    )


def _version_of(obj: dict[str, Any]) -> str:
    """An object's version: ``modified``, else ``created`` (marking-definitions and other
    objects without ``modified``), else the epoch."""
    return str(obj.get("modified") or obj.get("created") or "1970-01-01T00:00:00.000Z")


def put_object(
    conn: Connection,
    obj: dict[str, Any],
    *,
    owner: str,
    audience: Audience,
    disclosure: str | None = None,
    now: float | None = None,
) -> StoredObject | None:
    """Store one version of ``obj``; return it, or None when that version (``id`` and
    ``modified``) is already here with the same audience. ``date_added`` never goes
    backwards on this node.

    The same version with another audience (a disclosure's objects that did not change
    when it was disclosed or relabelled: who may read them did) is added again: a new
    ``seq`` and ``date_added``, so a TAXII reader polling with ``added_after``, and a
    peer pulling after a seq, are given it now that they may read it."""
    version = _version_of(obj)
    found = conn.execute(
        select(stix_objects.c.seq, stix_objects.c.audience).where(
            stix_objects.c.id == obj["id"], stix_objects.c.modified == version
        )
    ).first()
    if found is not None:
        if Audience.model_validate_json(found.audience) == audience:
            return None
        conn.execute(delete(stix_objects).where(stix_objects.c.seq == found.seq))
    added = time.time() if now is None else now
    last = conn.execute(select(func.max(stix_objects.c.date_added))).scalar()
    if last is not None and added <= last:
        added = last + 1e-6
    added = round(added, 6)
    values = {
        "id": obj["id"],
        "modified": version,
        "type": obj["type"],
        "spec_version": str(obj.get("spec_version", "2.1")),
        "date_added": added,
        "owner": owner,
        "disclosure": disclosure,
        "audience": audience.model_dump_json(),
        "object": orjson.dumps(obj).decode(),
    }
    inserted = conn.execute(insert(stix_objects).values(**values)).inserted_primary_key
    assert inserted is not None
    seq = int(inserted[0])
    return StoredObject(
        seq=seq,
        id=values["id"],
        modified=version,
        type=values["type"],
        spec_version=values["spec_version"],
        date_added=added,
        owner=owner,
        disclosure=disclosure,
        audience=audience,
        object=obj,
    )
