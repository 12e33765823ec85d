"""What a peer's delivery says, as this node's rows, and the events that tell of it.

``received_values`` turns a delivered vulnerability (``read_disclosure``'s fields, the
full bodies once its attack-pattern is here too: ``read_state``) into the disclosure's
row; ``exposure_values`` a delivered sighting into an exposure row. The event builders
(``disclosure_event``, ``row_event``, ``exposure_event``) are what the streams carry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from custodes.errors import CustodesError
from custodes.redteam.models import Affected
from custodes.redteam.records import stamp
from custodes.redteam.stix import DisclosureState, read_state, stable_id
from custodes.redteam.store import StoredObject
from custodes.redteam.tlp import Audience

__all__ = [
    "TEXT_COLUMNS",
    "affected_of",
    "bodies",
    "disclosure_event",
    "exposure_event",
    "exposure_values",
    "parse_ts",
    "parts",
    "received_values",
    "row_event",
]


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


TEXT_COLUMNS = ("report", "triage", "disclose", "summary")
_COLUMNS = ("origin", "stage", "tlp", "severity", "title", "embargo_until", *TEXT_COLUMNS)


def _column(name: str, value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if name in TEXT_COLUMNS and value is not None and not isinstance(value, str):
        return orjson.dumps(value).decode()
    if name == "embargo_until" and isinstance(value, datetime):
        return value.timestamp()
    if name == "embargo_until" and isinstance(value, str):
        return parse_ts(value).timestamp()
    return value


def received_values(fields: dict[str, Any], obj: StoredObject) -> dict[str, Any]:
    """A delivered vulnerability's row (``read_disclosure``'s fields, its audience)."""
    if "triage" not in fields and "affected" in fields:
        fields = fields | {"triage": {"affected": fields["affected"]}}
    values = {k: _column(k, fields.get(k)) for k in _COLUMNS}
    values |= {
        "id": obj.id,
        "origin": values["origin"] or obj.owner,
        "stage": values["stage"] or obj.audience.stage,
        "tlp": obj.audience.tlp,
        "audience": obj.audience.model_dump_json(),
        "title": values["title"] or str(obj.object.get("name", obj.id)),
        "report": values["report"] or "{}",
        "reporter": obj.audience.reporter,
        "created_at": parse_ts(str(obj.object.get("created", obj.modified))).timestamp(),
        "updated_at": parse_ts(obj.modified).timestamp(),
        "entry_index": None,
    }
    return values


def exposure_values(
    fields: dict[str, Any], row: dict[str, Any], obj: StoredObject
) -> dict[str, Any]:
    """A delivered sighting's exposure row (``read_exposure``'s fields)."""
    agent_id = str(fields["agent_id"])
    operator = fields.get("operator") or next(
        (a.operator for a in affected_of(row) if a.agent_id == agent_id), ""
    )
    evidence = fields.get("evidence")
    return {
        "disclosure": row["id"],
        "agent_id": agent_id,
        "home": fields.get("home") or obj.owner,
        "operator": operator,
        "status": fields["status"],
        "evidence": None if evidence is None else orjson.dumps(evidence).decode(),
        "note": fields.get("note"),
        "updated_at": parse_ts(obj.modified).timestamp(),
        "entry_index": None,
    }


def parts(disclosure: str) -> tuple[str, ...]:
    """The ids of a disclosure's attack-pattern, course of action and public summary."""
    return (
        stable_id("attack-pattern", disclosure),
        stable_id("course-of-action", disclosure),
        stable_id("report", disclosure, "summary"),
    )


def bodies(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The full bodies of a delivered disclosure, once its attack-pattern is here too."""
    try:
        state = read_state(objects)
    except (CustodesError, ValidationError, KeyError, ValueError):
        return {}  # the rest of the disclosure arrives in a later delivery
    return {
        "report": state.report.model_dump_json(),
        "disclose": None if state.disclose is None else state.disclose.model_dump_json(),
        "summary": None if state.summary is None else state.summary.model_dump_json(),
    }


def affected_of(row: dict[str, Any]) -> list[Affected]:
    """The affected agents a disclosure's row names (its triage's)."""
    if not row.get("triage"):
        return []
    triage = orjson.loads(row["triage"])
    return [Affected.model_validate(a) for a in triage.get("affected", ())]


def disclosure_event(state: DisclosureState, audience: Audience) -> dict[str, Any]:
    return {
        "kind": "disclosure",
        "disclosure": state.id,
        "origin": state.origin,
        "stage": state.stage,
        "title": state.report.title,
        "severity": None if state.triage is None else state.triage.severity,
        "tlp": audience.tlp,
        "audience": audience.model_dump(mode="json"),
        "at": state.modified.isoformat(),
    }


def row_event(values: dict[str, Any], audience: Audience) -> dict[str, Any]:
    return {
        "kind": "disclosure",
        "disclosure": values["id"],
        "origin": values["origin"],
        "stage": values["stage"],
        "title": values["title"],
        "severity": values["severity"],
        "tlp": audience.tlp,
        "audience": audience.model_dump(mode="json"),
        "at": stamp(values["updated_at"]).isoformat(),
    }


def exposure_event(
    row: dict[str, Any], values: dict[str, Any], audience: Audience
) -> dict[str, Any]:
    return {
        "kind": "exposure",
        "disclosure": row["id"],
        "title": row["title"],
        "severity": row["severity"],
        "agent_id": values["agent_id"],
        "home": values["home"],
        "operator": values["operator"],
        "status": values["status"],
        "index": values.get("entry_index"),
        "tlp": audience.tlp,
        "audience": audience.model_dump(mode="json"),
        "at": stamp(values["updated_at"]).isoformat(),
    }
