"""Reading and writing a disclosure's rows (``redteam_disclosures``, ``redteam_exposures``,
``redteam_openings``): the persistence beside ``custodes.redteam.service``.

A row holds the bodies so far as JSON; ``state_of`` turns it back into the
``DisclosureState`` the STIX builders take. The latest relabel is not a column: it is
read from this node's openings (only the origin relabels).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from custodes.ledger.canonical import canonical_dumps
from custodes.redteam.models import (
    ActOpening,
    DiscloseBody,
    RedteamAct,
    RelabelBody,
    ReportBody,
    SummaryBody,
    TriageBody,
)
from custodes.redteam.stix import DisclosureState
from custodes.redteam.store import (
    StoredObject,
    redteam_disclosures,
    redteam_exposures,
    redteam_openings,
    stix_objects,
)
from custodes.redteam.tlp import Audience

__all__ = [
    "CONTEXT",
    "ActOutput",
    "disclosure_row",
    "exposure_row",
    "keep_opening",
    "latest_object",
    "objects_of",
    "opening_body",
    "save_exposure",
    "save_received",
    "save_state",
    "stamp",
    "state_of",
]

CONTEXT = "context"  # how an act came (``{"via": "taxii"}``): beside the body, not in it


def stamp(seconds: float) -> datetime:
    """A STIX timestamp's precision: milliseconds, UTC."""
    return datetime.fromtimestamp(round(seconds, 3), UTC)


def opening_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body an opening commits to, without the node's context."""
    return {k: v for k, v in body.items() if k != CONTEXT}


def keep_opening(conn: Connection, index: int, act: RedteamAct, opening: ActOpening) -> None:
    conn.execute(
        insert(redteam_openings).values(
            idx=index,
            disclosure=act.disclosure,
            op=act.op,
            content=act.content,
            salt=opening.salt,
            body=canonical_dumps(opening.body).decode(),
        )
    )


def disclosure_row(conn: Connection, disclosure: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(redteam_disclosures).where(redteam_disclosures.c.id == disclosure)
    ).first()
    return None if row is None else dict(row._mapping)


def exposure_row(conn: Connection, disclosure: str, agent_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(redteam_exposures).where(
            redteam_exposures.c.disclosure == disclosure,
            redteam_exposures.c.agent_id == agent_id,
        )
    ).first()
    return None if row is None else dict(row._mapping)


def _json(text: str | None) -> dict[str, Any] | None:
    return None if text is None else orjson.loads(text)


def _latest_relabel(conn: Connection, disclosure: str) -> RelabelBody | None:
    row = conn.execute(
        select(redteam_openings.c.body)
        .where(redteam_openings.c.disclosure == disclosure, redteam_openings.c.op == "relabel")
        .order_by(redteam_openings.c.idx.desc())
        .limit(1)
    ).first()
    return None if row is None else RelabelBody.model_validate(orjson.loads(row.body))


def state_of(conn: Connection, row: dict[str, Any]) -> DisclosureState:
    triage, disclose, summary = (_json(row[k]) for k in ("triage", "disclose", "summary"))
    return DisclosureState(
        id=row["id"],
        origin=row["origin"],
        stage=row["stage"],
        report=ReportBody.model_validate_json(row["report"]),
        triage=None if triage is None else TriageBody.model_validate(triage),
        disclose=None if disclose is None else DiscloseBody.model_validate(disclose),
        relabel=_latest_relabel(conn, row["id"]),
        summary=None if summary is None else SummaryBody.model_validate(summary),
        created=stamp(row["created_at"]),
        modified=stamp(row["updated_at"]),
    )


def _dump(body: Any) -> str | None:
    return None if body is None else body.model_dump_json()


def save_state(
    conn: Connection,
    state: DisclosureState,
    audience: Audience,
    *,
    index: int | None,
    reporter: str | None,
) -> None:
    """Insert or update the disclosure's row from ``state``."""
    values = {
        "origin": state.origin,
        "stage": state.stage,
        "tlp": audience.tlp,
        "audience": audience.model_dump_json(),
        "severity": None if state.triage is None else state.triage.severity,
        "title": state.report.title,
        "reporter": reporter,
        "embargo_until": None
        if state.disclose is None
        else state.disclose.embargo_until.timestamp(),
        "report": state.report.model_dump_json(),
        "triage": _dump(state.triage),
        "disclose": _dump(state.disclose),
        "summary": _dump(state.summary),
        "updated_at": state.modified.timestamp(),
        "entry_index": index,
    }
    if disclosure_row(conn, state.id) is None:
        values |= {"id": state.id, "created_at": state.created.timestamp()}
        conn.execute(insert(redteam_disclosures).values(**values))
    else:
        conn.execute(
            update(redteam_disclosures).where(redteam_disclosures.c.id == state.id).values(**values)
        )


def save_exposure(conn: Connection, values: dict[str, Any]) -> None:
    """Insert or update one exposure row (``values`` names every column)."""
    key = (values["disclosure"], values["agent_id"])
    if exposure_row(conn, *key) is None:
        conn.execute(insert(redteam_exposures).values(**values))
        return
    conn.execute(
        update(redteam_exposures)
        .where(
            redteam_exposures.c.disclosure == key[0],
            redteam_exposures.c.agent_id == key[1],
        )
        .values(**values)
    )


def latest_object(conn: Connection, object_id: str) -> dict[str, Any] | None:
    """The newest stored version of ``object_id``."""
    row = conn.execute(
        select(stix_objects.c.object)
        .where(stix_objects.c.id == object_id)
        .order_by(stix_objects.c.seq.desc())
        .limit(1)
    ).first()
    return None if row is None else orjson.loads(row.object)


def save_received(conn: Connection, values: dict[str, Any], *, exists: bool) -> None:
    """Insert or update a delivered disclosure's row (``values`` names every column)."""
    if not exists:
        conn.execute(insert(redteam_disclosures).values(**values))
        return
    changed = {k: v for k, v in values.items() if k not in ("id", "created_at")}
    conn.execute(
        update(redteam_disclosures)
        .where(redteam_disclosures.c.id == values["id"])
        .values(**changed)
    )


def objects_of(
    conn: Connection, disclosure: str, ids: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Every stored version of the objects of ``disclosure`` (the vulnerability itself
    and ``ids`` included, however they were stored), oldest first."""
    rows = conn.execute(
        select(stix_objects.c.object)
        .where(
            (stix_objects.c.disclosure == disclosure) | stix_objects.c.id.in_((disclosure, *ids))
        )
        .order_by(stix_objects.c.seq)
    ).all()
    return [orjson.loads(r.object) for r in rows]


@dataclass
class ActOutput:
    """What one act's transaction stored and the events to publish once it commits."""

    stored: list[StoredObject] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.stored.clear()
        self.events.clear()

    def keep(self, found: Iterable[StoredObject | None]) -> None:
        self.stored.extend(s for s in found if s is not None)
