"""Dashboard pages: one agent (``/ui/agents/{agent_id}``).

Its record (public or private view, as ``GET /api/v1/registry/agents/{id}`` gives this
viewer), status and order history, lease state and rules, attestations and
recognitions, evaluation results with ASR and drift-coefficient charts, the decisions
timeline (clear rationale only where entitled), drift alerts and the red-team exposures
the viewer may read. Another member's agent comes from the alliance look-up, with its
source and age. Regulators and operators get links to the order pages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from custodes.registry.queries import PUBLIC_AGENT_FIELDS
from custodes.web.agent_view import agent_view, may_order
from custodes.web.auth import node_of
from custodes.web.render import page
from custodes.web.timeline import CURSOR_PATTERN

__all__ = ["router"]

router = APIRouter()

Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN)]


@router.get("/agents/{agent_id}", include_in_schema=False)
def agent_page(request: Request, agent_id: str, cursor: Cursor = None) -> Response:
    session = request.state.session
    viewer = None if session is None else session.principal
    state = request.app.state.parent.state
    view = agent_view(node_of(request), state, agent_id, viewer, cursor)
    record = view.answer["record"]
    return page(
        request,
        "agent.html",
        section="registry",
        title=str(record.get("name") or agent_id),
        view=view,
        record=record,
        private=sorted(set(record) - _SHOWN),
        may_order=may_order(viewer),
        cursor=cursor,
    )


# Fields the page lays out itself; any other field of the record (the private view's
# contacts, aliases, interfaces, model...) is listed beneath them as it is.
_SHOWN = PUBLIC_AGENT_FIELDS  # the public fields, laid out; the private view lists more
