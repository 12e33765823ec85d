"""Dashboard pages: the alliance overview (``/ui/``).

The members of the roster in force, every log this node follows (its own and each
peer's mirror) with size, checkpoint age, cosignatures and finality, stale mirrors and
rewrite alarms, split-view alerts, and this node's agents by status. All public: the
same figures the API gives anyone (``/api/v1/alliance/mirrors``, ``/federation/alerts``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from custodes.web.alliance_view import overview_of
from custodes.web.auth import node_of
from custodes.web.render import page

__all__ = ["router"]

router = APIRouter()


@router.get("/", include_in_schema=False)
def overview(request: Request) -> Response:
    state = request.app.state.parent.state
    found = overview_of(
        node_of(request), getattr(state, "lookups", None), getattr(state, "gossip", None)
    )
    return page(request, "overview.html", section="overview", title="Alliance overview", view=found)
