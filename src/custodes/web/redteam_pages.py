"""Dashboard pages: the red-teaming repository (``/ui/redteam``, ``/ui/redteam/{id}``).

The same reads as ``/api/v1/redteam/disclosures`` with the viewer's rights: the public
sees what is TLP:CLEAR and disclosed; TLP:AMBER and RED disclosures only their audience.
A disclosure the viewer may not read is "not found", exactly as on the API.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from custodes.redteam.tlp import Reader
from custodes.web.auth import node_of
from custodes.web.render import page

__all__ = ["router"]

router = APIRouter()

_PAGE = 50
Stage = Annotated[str | None, Query(pattern="^(reported|triaged|disclosed)?$")]
Severity = Annotated[str | None, Query(pattern="^(low|medium|high|critical)?$")]


def _reader(request: Request) -> Reader:
    session = request.state.session
    return Reader.of(None if session is None else session.principal)


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
    found = node_of(request).redteam.reads.disclosures(
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
