"""The registry over HTTP: signed writes with a token, reads public or private, as_of."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from custodes.api.bodies import read_registry_change
from custodes.api.deps import caller, get_node, require_caller
from custodes.api.openapi import REGISTRY_CHANGE_BODY, bearer, errors
from custodes.api.proofs import proof_json
from custodes.node import Node
from custodes.registry.queries import MAX_INDEX, AgentFilter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/registry", tags=["registry"])
# The public view without a token, the private one with it.
_MAYBE_TOKEN: dict[str, Any] = {"security": [{}, {"bearer": []}]}
AsOf = Annotated[int | None, Query(ge=0, le=MAX_INDEX, description="a log index")]


def _with_proof(node: Node, answer: dict[str, Any]) -> dict[str, Any]:
    index = answer["entry_index"]
    size, _ = node.store.tree_size()
    if index < size:
        answer["proof"] = proof_json(node, node.proofs.inclusion(index, size), size)
    else:
        answer["proof"] = None  # sequenced, not yet under a checkpoint: ask again shortly
    return answer


@router.post(
    "/entries",
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
    openapi_extra=bearer(REGISTRY_CHANGE_BODY),
    summary="Register or change an operator, agent, key or model (signed by the actor)",
)
async def submit(request: Request) -> dict[str, Any]:
    # Token look-ups read the database: keep them off the event loop, which also
    # serves the kill-order streams.
    principal = await run_in_threadpool(require_caller, request)
    body = await read_registry_change(request)
    index = await run_in_threadpool(get_node(request).registry.submit_change, body, principal)
    return {"index": index}


@router.get(
    "/agents",
    summary="Search agents (public view without a token)",
    responses=errors(400, 401, 403, 422),
    openapi_extra=_MAYBE_TOKEN,
)
def list_agents(
    request: Request,
    jurisdiction: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    sector: str | None = None,
    status: Annotated[str | None, Query(pattern=r"^(active|suspended|revoked)$")] = None,
    operator: str | None = None,
    skill: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: str | None = None,
) -> dict[str, Any]:
    where = AgentFilter(jurisdiction, sector, status, operator, skill)
    return get_node(request).queries.agents(where, limit=limit, after=after, reader=caller(request))


@router.get(
    "/agents/{agent_id}",
    summary="One agent, now or as of a log index, with proof",
    responses=errors(400, 401, 403, 404, 422),
    openapi_extra=_MAYBE_TOKEN,
)
def get_agent(request: Request, agent_id: str, as_of: AsOf = None) -> dict[str, Any]:
    node = get_node(request)
    answer = node.queries.agent(agent_id, as_of=as_of, reader=caller(request))
    return _with_proof(node, answer)


@router.get(
    "/operators",
    summary="Registered operators",
    responses=errors(401, 403),
    openapi_extra=bearer(),
)
def list_operators(request: Request) -> list[dict[str, Any]]:
    require_caller(request)
    return get_node(request).queries.operators()


@router.get(
    "/operators/{operator_id}",
    summary="One operator, now or as of a log index",
    responses=errors(400, 401, 403, 404, 422),
    openapi_extra=_MAYBE_TOKEN,
)
def get_operator(request: Request, operator_id: str, as_of: AsOf = None) -> dict[str, Any]:
    node = get_node(request)
    answer = node.queries.operator(operator_id, as_of=as_of, reader=caller(request))
    return _with_proof(node, answer)


@router.get("/models", summary="Registered models", responses=errors())
def list_models(request: Request) -> list[dict[str, Any]]:
    return get_node(request).queries.models()


@router.get(
    "/models/{model_id}",
    summary="One model, now or as of a log index",
    responses=errors(400, 404, 422),
)
def get_model(request: Request, model_id: str, as_of: AsOf = None) -> dict[str, Any]:
    node = get_node(request)
    return _with_proof(node, node.queries.model(model_id, as_of=as_of))
