"""Dashboard pages: the red-teaming repository (``/ui/redteam``, ``/ui/redteam/{id}``).

The same reads as ``/api/v1/redteam/disclosures`` with the viewer's rights: the public
sees what is TLP:CLEAR and disclosed; TLP:AMBER and RED disclosures only their audience.
A disclosure the viewer may not read is "not found", exactly as on the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from custodes.redteam.store import redteam_exposures
from custodes.redteam.tlp import Reader
from custodes.store.db import read_tx
from custodes.web.auth import node_of
from custodes.web.render import page

if TYPE_CHECKING:
    from custodes.node import Node

__all__ = ["router"]

router = APIRouter()

_PAGE = 50
Stage = Annotated[str | None, Query(pattern="^(reported|triaged|disclosed)?$")]
Severity = Annotated[str | None, Query(pattern="^(low|medium|high|critical)?$")]


def _reader(request: Request) -> Reader:
    session = request.state.session
    return Reader.of(None if session is None else session.principal)


def _affected(node: Node, ids: list[str]) -> dict[str, list[dict[str, str]]]:
    """Each listed disclosure's affected agents and their patch state (one query). The
    listed disclosures are readable by the viewer, and so are their exposures (as on
    the disclosure's own page and ``GET /api/v1/redteam/disclosures/{id}``)."""
    found: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
    if not ids:
        return found
    query = (
        select(
            redteam_exposures.c.disclosure, redteam_exposures.c.agent_id, redteam_exposures.c.status
        )
        .where(redteam_exposures.c.disclosure.in_(ids))
        .order_by(redteam_exposures.c.agent_id)
    )
    with read_tx(node.engine) as conn:
        for row in conn.execute(query):
            found[str(row.disclosure)].append({"agent_id": row.agent_id, "status": row.status})
    return found


def _href(filters: dict[str, str], offset: int) -> str:
    given = {k: v for k, v in filters.items() if v}
    return "/ui/redteam?" + urlencode({**given, **({"offset": offset} if offset else {})})


@router.get("/redteam", include_in_schema=False)
def disclosures_page(
    request: Request,
    stage: Stage = None,
    severity: Severity = None,
    agent_id: Annotated[str | None, Query(max_length=128)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    node = node_of(request)
    found = node.redteam.reads.disclosures(
        _reader(request),
        stage=stage or None,
        severity=severity or None,
        agent_id=agent_id or None,
        limit=_PAGE,
        offset=offset,
    )
    filters = {"stage": stage or "", "severity": severity or "", "agent_id": agent_id or ""}
    pager: dict[str, Any] = {
        "next": None if found.get("next") is None else _href(filters, found["next"]),
        "prev": None if offset == 0 else _href(filters, max(0, offset - _PAGE)),
    }
    return page(
        request,
        "redteam.html",
        section="redteam",
        title="Red-teaming",
        items=found["disclosures"],
        affected=_affected(node, [d["id"] for d in found["disclosures"]]),
        filters=filters,
        pager=pager,
    )


@router.get("/redteam/{disclosure}", include_in_schema=False)
def disclosure_page(request: Request, disclosure: str) -> Response:
    found = node_of(request).redteam.reads.disclosure(disclosure, _reader(request))
    return page(
        request,
        "redteam_disclosure.html",
        section="redteam",
        title=str(found.get("title") or disclosure),
        d=found,
    )
