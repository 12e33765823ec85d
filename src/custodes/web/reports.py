"""Dashboard pages: forensic reports (``/ui/forensics``), built on this node.

A signed-in regulator or auditor names the agents, the depth and the window; the node
builds the timeline exactly as ``POST /api/v1/forensics/timeline`` does (its own slice
with the viewer's entitlements, the peers' as the public), verifies it as ``custodes
forensics verify`` would, and keeps the bundle in its data directory, in a folder of its
asker's own (``forensics/<SHA-256 of the principal id, 32 hex>/``) with a small summary
beside it (``<id>.meta.json``) that the list reads instead of every bundle. A report holds
the clear text its asker was entitled to, so only its asker sees it listed, reads it or
downloads its bundle. The report is the same standalone, script-free HTML the CLI writes;
it is served with its own policy (inline styles, no scripts, nothing fetched).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from custodes.api.forensics import node_timeline
from custodes.errors import AuthError, BadRequest, NotFound
from custodes.forensics.bundle import read_bundle, write_bundle
from custodes.forensics.models import MAX_DEPTH, Incident, Timeline
from custodes.forensics.report import render_report
from custodes.forensics.verify import verify_bundle
from custodes.registry.sessions import Session
from custodes.web.auth import form, node_of, require_session
from custodes.web.render import page

__all__ = ["REPORT_CSP", "router"]

router = APIRouter()

# The report carries its own styles inline and no script; it may fetch nothing.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
_INVESTIGATORS = frozenset({"regulator", "auditor"})
_REPORT_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
_AGENTS = re.compile(r"[\s,]+")


def _investigator(request: Request) -> Session:
    session = require_session(request)
    if session.principal.role not in _INVESTIGATORS:
        raise AuthError(
            f"forensic reports are for regulators and auditors; {session.principal.id} is "
            f"a {session.principal.role}",
            code="not_investigator",
            status=403,
        )
    return session


_LISTED = 500  # newest reports listed


def _folder(request: Request, session: Session) -> Path:
    """The asker's own folder: another principal's reports are never even opened."""
    asker = hashlib.sha256(session.principal.id.encode()).hexdigest()[:32]
    return Path(node_of(request).settings.data_dir) / "forensics" / asker


def _summary(name: str, timeline: Timeline) -> dict[str, Any]:
    return {
        "id": name,
        "asked_by": timeline.asked_by,
        "agents": timeline.incident.agents,
        "start": timeline.incident.start.isoformat(),
        "end": timeline.incident.end.isoformat(),
        "events": len(timeline.events),
        "members": len(timeline.checkpoints),
        "generated_at": timeline.generated_at.isoformat(),
    }


def _mine(request: Request, session: Session) -> tuple[list[dict[str, Any]], int]:
    """This viewer's newest reports (the names sort by time) and how many it has."""
    names = sorted(_folder(request, session).glob("*.meta.json"), reverse=True)
    found = []
    for path in names[:_LISTED]:
        try:
            found.append(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError):
            continue  # a summary half written by a crash: its report is still served
    return found, len(names)


@router.get("/forensics", include_in_schema=False)
def reports(request: Request) -> Response:
    session = getattr(request.state, "session", None)
    allowed = session is not None and session.principal.role in _INVESTIGATORS
    listed, total = _mine(request, session) if allowed and session is not None else ([], 0)
    return page(
        request,
        "forensics.html",
        section="reports",
        title="Forensic reports",
        allowed=allowed,
        reports=listed,
        total=total,
        max_depth=MAX_DEPTH,
    )


def _instant(name: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(
            f"{name}: give a time like 2026-12-01T10:00:00Z", code="bad_window", status=422
        ) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _incident(fields: dict[str, str]) -> Incident:
    agents = [a for a in _AGENTS.split(fields.get("agents", "")) if a]
    try:
        incident = Incident(
            agents=agents,
            depth=int(fields.get("depth") or 1),
            start=_instant("from", fields.get("start", "")),
            end=_instant("to", fields.get("end", "")),
        )
    except (ValidationError, ValueError) as exc:
        raise BadRequest(
            "name at least one agent id and a depth from 0 to 4", code="bad_incident", status=422
        ) from exc
    if incident.end <= incident.start:
        raise BadRequest("the window's end must be after its start", code="bad_window", status=422)
    return incident


@router.post("/forensics", include_in_schema=False)
async def build(request: Request) -> Response:
    fields = await form(request)
    session = _investigator(request)
    incident = _incident(fields)
    node = node_of(request)

    def made() -> str:
        timeline = node_timeline(node, incident, session.principal)
        verify_bundle(timeline)  # a report this node cannot prove is not kept
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        folder = _folder(request, session)
        folder.mkdir(parents=True, exist_ok=True)
        write_bundle(timeline, folder / f"{name}.json")
        meta = folder / f"{name}.meta.json"
        partial = meta.with_suffix(".partial")
        partial.write_bytes(orjson.dumps(_summary(name, timeline)))
        os.replace(partial, meta)  # listed only once the bundle and its summary are whole
        return name

    name = await run_in_threadpool(made)
    return RedirectResponse(f"/ui/forensics/{name}", status_code=303)


def _bundle_path(request: Request, report_id: str) -> Path:
    session = _investigator(request)
    if not _REPORT_ID.match(report_id):
        raise NotFound("no such report", code="unknown_report")
    path = _folder(request, session) / f"{report_id}.json"
    if not path.is_file():  # another asker's report is in another folder: unseen
        raise NotFound("no such report", code="unknown_report")
    return path


@router.get("/forensics/{report_id}", include_in_schema=False)
def report(request: Request, report_id: str) -> Response:
    timeline = read_bundle(_bundle_path(request, report_id))
    verified = verify_bundle(timeline)
    return HTMLResponse(
        render_report(timeline, verified),
        headers={"Cache-Control": "no-store", "Content-Security-Policy": REPORT_CSP},
    )


@router.get("/forensics/{report_id}/bundle.json", include_in_schema=False)
def bundle(request: Request, report_id: str) -> Response:
    path = _bundle_path(request, report_id)
    return Response(
        path.read_bytes(),
        media_type="application/json",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="forensics-{report_id}.json"',
        },
    )
