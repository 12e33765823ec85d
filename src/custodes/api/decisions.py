"""Decisions one at a time: the public or clear view, the clear text, and erasure.

``GET /api/v1/decisions/{index}`` answers everyone: the clear record where the caller is
entitled, the commitment otherwise (never a 403), with the inclusion proof either way.
``GET .../clear`` asks for the clear text outright: 403 ``not_entitled`` when the caller
may not read it. ``POST .../erasure``: the home regulator's signed erasure request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from custodes.api.bodies import read_json
from custodes.api.deps import caller, get_node, require_caller
from custodes.api.openapi import bearer, errors, optional_token
from custodes.api.readside import decision_item

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/decisions", tags=["ledger"])
Index = Annotated[int, Path(ge=0, le=2**63 - 1)]


@router.get(
    "/{index}",
    summary="One logged decision: clear where the caller is entitled, else its commitment",
    responses=errors(404, 410, 422),
    openapi_extra=optional_token(),
)
def get_decision(index: Index, request: Request) -> dict[str, Any]:
    """The decision at ``index`` with its inclusion proof. A committed (version 2) record
    carries ``clear`` (salt and record, which reproduce the commitment) for its home
    regulator, its operator and a host regulator it names; every read that shows clear
    text is logged. An erased record carries ``erased``; an entitled reader gets 410."""
    return decision_item(get_node(request), index, caller(request))


@router.get(
    "/{index}/clear",
    summary="A decision's clear text, for an entitled principal",
    responses=errors(401, 403, 404, 410, 422),
    openapi_extra=bearer(),
)
def get_clear(index: Index, request: Request) -> dict[str, Any]:
    """The clear record and salt behind decision ``index``'s commitment (a plain record as
    logged). 403 ``not_entitled`` unless the token's principal is the agent's home
    regulator, its operator, or a host regulator the record names; 410 once erased. The
    read is logged (an access entry signed by the node)."""
    return get_node(request).disclosure.clear(require_caller(request), index)


@router.post(
    "/{index}/erasure",
    summary="Erase a decision's clear text on a legal request (home regulator only)",
    responses=errors(400, 401, 403, 404, 409, 410, 422),
    openapi_extra=bearer(),
)
async def erase_decision(index: Index, request: Request) -> dict[str, Any]:
    """Body: a DSSE envelope (``application/vnd.custodes.erasure+json``: index,
    commitment, legal_basis, actor) signed by the regulator's registered key. The erasure
    is logged and the clear record and salt destroyed in one transaction."""
    node = get_node(request)
    principal = await run_in_threadpool(require_caller, request)
    envelope = await read_json(request)
    answer: dict[str, Any] = await run_in_threadpool(
        node.disclosure.erase, envelope, principal, index
    )
    return answer
