"""Dashboard pages: the alliance overview (``/ui/``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from custodes.web.render import page

__all__ = ["router"]

router = APIRouter()


@router.get("/", include_in_schema=False)
def overview(request: Request) -> Response:
    return page(request, "overview.html", section="overview", title="Alliance overview")
