"""Split views: the checkpoints this node has seen, and the split views it has proved.

``GET /api/v1/federation/checkpoints`` is what members gossip: every origin's newest
seen checkpoint, as the verbatim signed note with its cosignatures. ``GET /alerts``
lists the proved split views (with their evidence) and the suspicions still open;
``POST /api/v1/admin/federation/alerts/{id}/resolve`` (admin token) lifts the witness's
refusal of that origin, logged with the reason (docs/design/0027).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from custodes.api.bodies import read_body
from custodes.api.deps import get_node, require_admin
from custodes.api.openapi import admin_token, errors
from custodes.api.validation import parse_model

__all__ = ["admin_router", "router"]

router = APIRouter(prefix="/api/v1/federation", tags=["federation"])
# Every admin operation lives under /api/v1/admin/ (tests/api/test_openapi.py).
admin_router = APIRouter(prefix="/api/v1/admin/federation", tags=["federation"])


_MAX_ALERT_ID = 2**31 - 1  # alert ids are 32-bit integers on both databases


class ResolveIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/checkpoints", summary="Every log's newest checkpoint seen here", responses=errors())
def checkpoints(request: Request) -> dict[str, Any]:
    """For this node's own log and every log it witnesses, the newest checkpoint it has
    seen, as the signed note verbatim with the cosignatures it holds. Public."""
    seen = get_node(request).split_views.seen()
    return {"checkpoints": [{"origin": o, "note": n.decode()} for o, n in seen.items()]}


@router.get("/alerts", summary="Proved split views and open suspicions", responses=errors())
def alerts(request: Request) -> dict[str, Any]:
    """Each proved split view (open or resolved) with its evidence bundle and the index
    of the entry that logged it, and the suspicions (views no proof connects yet, not
    evidence) the gossip keeps asking about. Public."""
    gossip = getattr(request.app.state, "gossip", None)
    suspicions = list(gossip.suspicions.values()) if gossip is not None else []
    return {
        "alerts": [a.to_json() for a in get_node(request).split_views.alerts()],
        "suspicions": suspicions,
    }


@admin_router.post(
    "/alerts/{alert_id}/resolve",
    summary="Lift the refusal a split view put on a log (admin token)",
    responses=errors(400, 401, 403, 404, 409, 413, 422),
    openapi_extra=admin_token(
        {
            "requestBody": {
                "content": {"application/json": {"schema": ResolveIn.model_json_schema()}},
                "required": True,
            }
        }
    ),
)
async def resolve(
    alert_id: Annotated[int, Path(ge=0, le=_MAX_ALERT_ID)], request: Request
) -> dict[str, Any]:
    """The members have decided: this witness cosigns the origin again. The resolution
    and its reason are logged; the evidence stays in the log."""
    require_admin(request)
    body = parse_model(ResolveIn, await read_body(request, 16 * 1024))
    views = get_node(request).split_views
    alert = await run_in_threadpool(views.resolve, alert_id, body.reason)
    return alert.to_json()
