"""The red-teaming repository's reads, each through the TLP rule (``can_read``): what a
reader may not read is not listed, and reads as not found (its existence is not
confirmed)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, select

from custodes.errors import NotFound
from custodes.redteam.events import visible
from custodes.redteam.received import TEXT_COLUMNS, exposure_event
from custodes.redteam.records import disclosure_row, stamp
from custodes.redteam.store import redteam_disclosures, redteam_exposures, redteam_openings
from custodes.redteam.tlp import Audience, Reader, can_read
from custodes.store.db import read_tx

__all__ = ["RedteamReads", "exposure_json", "summary_of"]


def _readable(row: dict[str, Any], reader: Reader) -> bool:
    return can_read(Audience.model_validate_json(row["audience"]), reader)


class RedteamReads:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def disclosures(
        self,
        reader: Reader,
        *,
        stage: str | None = None,
        severity: str | None = None,
        agent_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """The disclosures ``reader`` may read, oldest first, a page at a time."""
        query = select(redteam_disclosures).order_by(
            redteam_disclosures.c.created_at, redteam_disclosures.c.id
        )
        if stage is not None:
            query = query.where(redteam_disclosures.c.stage == stage)
        if severity is not None:
            query = query.where(redteam_disclosures.c.severity == severity)
        if agent_id is not None:
            query = query.where(
                redteam_disclosures.c.id.in_(
                    select(redteam_exposures.c.disclosure).where(
                        redteam_exposures.c.agent_id == agent_id
                    )
                )
            )
        with read_tx(self._engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        visible = [summary_of(r) for r in rows if _readable(r, reader)]
        page = visible[offset : offset + limit]
        more = offset + limit < len(visible)
        return {"disclosures": page, "next": offset + limit if more else None}

    def disclosure(self, disclosure: str, reader: Reader) -> dict[str, Any]:
        """One disclosure, its exposures and this node's acts on it; 404 when ``reader``
        may not read it (its existence is not confirmed)."""
        with read_tx(self._engine) as conn:
            row = disclosure_row(conn, disclosure)
            if row is None or not _readable(row, reader):
                raise NotFound(
                    f"no disclosure {disclosure} is known here", code="unknown_disclosure"
                )
            exposures = conn.execute(
                select(redteam_exposures)
                .where(redteam_exposures.c.disclosure == disclosure)
                .order_by(redteam_exposures.c.agent_id)
            ).all()
            acts = conn.execute(
                select(redteam_openings.c.idx, redteam_openings.c.op, redteam_openings.c.content)
                .where(redteam_openings.c.disclosure == disclosure)
                .order_by(redteam_openings.c.idx)
            ).all()
        return summary_of(row) | {
            "audience": orjson.loads(row["audience"]),
            "bodies": {k: row[k] and orjson.loads(row[k]) for k in TEXT_COLUMNS},
            "exposures": [exposure_json(dict(e._mapping)) for e in exposures],
            "acts": [{"index": a.idx, "op": a.op, "content": a.content} for a in acts],
        }

    def exposures_of(self, agent_id: str, reader: Reader) -> list[dict[str, Any]]:
        """``agent_id``'s exposures in the disclosures ``reader`` may read."""
        query = (
            select(redteam_exposures, redteam_disclosures.c.audience, redteam_disclosures.c.title)
            .join(redteam_disclosures, redteam_disclosures.c.id == redteam_exposures.c.disclosure)
            .where(redteam_exposures.c.agent_id == agent_id)
            .order_by(redteam_exposures.c.updated_at)
        )
        with read_tx(self._engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        return [
            exposure_json(r) | {"title": r["title"]}
            for r in rows
            if _readable(r, reader) or _operates(reader, r)
        ]

    def snapshot(self, reader: Reader) -> list[dict[str, Any]]:
        """The exposure events ``reader`` would see now (a stream's first events)."""
        query = select(redteam_exposures, redteam_disclosures).join(
            redteam_disclosures, redteam_disclosures.c.id == redteam_exposures.c.disclosure
        )
        if reader.role == "operator":
            query = query.where(redteam_exposures.c.operator == reader.principal)
        with read_tx(self._engine) as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(query.order_by(redteam_exposures.c.updated_at))
            ]
        events = []
        for row in rows:
            audience = Audience.model_validate_json(row["audience"])
            event = exposure_event(row | {"id": row["disclosure"]}, row, audience)
            if visible(event, reader):
                events.append(event)
        return events


def summary_of(row: dict[str, Any]) -> dict[str, Any]:
    """A disclosure's row as listed (no bodies)."""
    return {
        "id": row["id"],
        "origin": row["origin"],
        "stage": row["stage"],
        "tlp": row["tlp"],
        "severity": row["severity"],
        "title": row["title"],
        "embargo_until": None
        if row["embargo_until"] is None
        else stamp(row["embargo_until"]).isoformat(),
        "created": stamp(row["created_at"]).isoformat(),
        "modified": stamp(row["updated_at"]).isoformat(),
    }


def exposure_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "disclosure": row["disclosure"],
        "agent_id": row["agent_id"],
        "home": row["home"],
        "operator": row["operator"],
        "status": row["status"],
        "evidence": row["evidence"] and orjson.loads(row["evidence"]),
        "note": row["note"],
        "updated": stamp(row["updated_at"]).isoformat(),
        "entry_index": row["entry_index"],
    }


def _operates(reader: Reader, row: dict[str, Any]) -> bool:
    """The operator of an agent reads its exposures (at its home)."""
    return (
        reader.role == "operator"
        and reader.principal == row["operator"]
        and reader.party == row["home"]
    )
