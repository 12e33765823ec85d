"""Dashboard pages: registry search (``/ui/agents``), filters and paging by plain GET forms.

The same read as ``GET /api/v1/registry/agents`` with the viewer as reader: each agent
full where the viewer may read it, its public fields otherwise; ``q`` narrows it to ids
starting with the text given (a range of the id index, as cheap as a page); text not
starting with ``urn:`` is the start of a short name, the id's part after
``urn:custodes:<this node's code>:agent:``, so "trad" finds ``…:agent:trader-7``. Paging
is by the last id of the page (``after``); ``trail`` keeps the ``after`` of the pages
before, so a page can link back without a second query.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from custodes.registry.queries import AgentFilter
from custodes.web.auth import node_of
from custodes.web.render import page

__all__ = ["router"]

router = APIRouter()

_TRAIL = 50  # pages remembered for "previous"; past that, "previous" starts over
_ID = r"^[A-Za-z0-9:._\-]{1,128}$"
Jurisdiction = Annotated[str | None, Query(pattern=r"^([A-Z]{2})?$")]
Status = Annotated[str | None, Query(pattern=r"^(active|suspended|revoked)?$")]
Text = Annotated[str | None, Query(max_length=128)]
Cursor = Annotated[str | None, Query(pattern=_ID)]


def _viewer(request: Request) -> Any:
    session = request.state.session
    return None if session is None else session.principal


def _href(filters: dict[str, str], **extra: str) -> str:
    return "/ui/agents?" + urlencode({**{k: v for k, v in filters.items() if v}, **extra})


def _before(prefix: str) -> str:
    """An id just below every id starting with ``prefix`` (ids are ASCII): the ``after``
    at which a page of ids with that prefix begins."""
    return prefix[:-1] + chr(ord(prefix[-1]) - 1) + "~"


def _search(
    request: Request, where: AgentFilter, limit: int, after: str | None, prefix: str | None
) -> dict[str, Any]:
    """A page of agents (as the API's search), only those whose id starts with ``prefix``
    (a short name's start: the id's after this node's ``urn:custodes:<code>:agent:``)."""
    if prefix and not prefix.startswith("urn:"):
        code = node_of(request).settings.jurisdiction.lower()
        prefix = f"urn:custodes:{code}:agent:{prefix}"
    start = after or (_before(prefix) if prefix else None)
    found = node_of(request).queries.agents(
        where, limit=limit, after=start, reader=_viewer(request)
    )
    if not prefix:
        return found
    items = [i for i in found["items"] if str(i["record"]["id"]).startswith(prefix)]
    return {"items": items, "next": found["next"] if len(items) == len(found["items"]) else None}


def _pager(
    filters: dict[str, str], after: str | None, trail: list[str], following: str | None
) -> dict[str, str | None]:
    """Links to the next and previous pages (None where there is none)."""
    here = [*trail, after or ""][-_TRAIL:] if after is not None else []
    next_href = None
    if following is not None:
        next_href = _href(filters, after=following, trail=",".join(here))
    prev_href = None
    if after is not None:
        back = trail[-1] if trail else ""
        extra = {"after": back, "trail": ",".join(trail[:-1])} if back else {}
        prev_href = _href(filters, **extra)
    return {"next": next_href, "prev": prev_href}


@router.get("/agents", include_in_schema=False)
def agents_page(  # noqa: PLR0917 - FastAPI maps each query parameter to one
    request: Request,
    jurisdiction: Jurisdiction = None,
    sector: Text = None,
    status: Status = None,
    operator: Text = None,
    skill: Text = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Cursor = None,
    trail: Annotated[str | None, Query(max_length=_TRAIL * 130)] = None,
    q: Annotated[str | None, Query(pattern=r"^([A-Za-z0-9:._\-]{1,128})?$")] = None,
) -> Response:
    filters = {
        "jurisdiction": jurisdiction or "",
        "sector": sector or "",
        "status": status or "",
        "operator": operator or "",
        "skill": skill or "",
    }
    where = AgentFilter(*(v or None for v in filters.values()))
    found = _search(request, where, limit, after or None, q or None)
    filters["q"] = q or ""
    if limit != 50:
        filters["limit"] = str(limit)
    earlier = [t for t in (trail or "").split(",") if t]
    return page(
        request,
        "agents.html",
        section="registry",
        title="Registry",
        filters=filters,
        items=found["items"],
        pager=_pager(filters, after or None, earlier, found["next"]),
        first=after is None,
    )
