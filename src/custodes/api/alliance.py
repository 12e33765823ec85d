"""Cross-border look-ups: any node answers for any agent of the alliance, with proof."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from custodes.api.deps import caller
from custodes.api.openapi import errors, optional_token
from custodes.federation.lookup_service import AllianceLookups

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alliance", tags=["alliance"])


def _lookups(request: Request) -> AllianceLookups:
    lookups: AllianceLookups = request.app.state.lookups
    return lookups


@router.get(
    "/agents/{agent_id}",
    summary="Any alliance agent's record and status, with proof and the data's age",
    responses=errors(404, 422),
    openapi_extra=optional_token(),
)
async def get_agent(request: Request, agent_id: str) -> Response:
    """The agent's record (public view without a token), its status (active, suspended,
    revoked; `suspended_in` lists territories, `*` for everywhere) and the active orders
    naming it, the index and leaf hash of its record's entry in its home's log, the
    entry itself, its inclusion proof at `checkpoint` (the home log's signed checkpoint
    with its cosignatures; `final` when a quorum of members cosigned it), `source`
    (`self`, `mirror` or `home`), and `age_s`, the seconds since that checkpoint was
    verified. `stale` is true when the data is older than `bound_s`: the home node
    could not be reached to confirm it. 404 `unknown_jurisdiction` for a home outside
    the roster, 404 `unknown_agent` for an agent its home does not know, 422 for an
    id that is not `urn:custodes:<jurisdiction>:agent:<slug>`."""
    lookups = _lookups(request)
    if "authorization" not in request.headers:
        hit = lookups.cached(agent_id)  # memory only: answered on the event loop
        if hit is not None:
            return _json(hit)
    reader = await run_in_threadpool(caller, request)
    return _json(await run_in_threadpool(lookups.agent, agent_id, reader))


def _json(answer: dict[str, Any]) -> Response:
    return Response(orjson.dumps(answer), media_type="application/json")


@router.get("/mirrors", summary="This node's mirror of each peer", responses=errors())
def mirrors(request: Request) -> list[dict[str, Any]]:
    """Each peer's mirror: size mirrored, age of its verified checkpoint, whether it is
    stale, the alarm if the peer rewrote its history, the last error reaching it."""
    return _lookups(request).mirror_states()
