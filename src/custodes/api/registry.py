"""The registry over HTTP: signed writes with a token, reads public or private, as_of."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from custodes.api.bodies import read_registry_change
from custodes.api.deps import caller, get_node, require_caller
from custodes.api.openapi import REGISTRY_CHANGE_BODY, bearer, errors, optional_token
from custodes.api.proofs import proof_json
from custodes.api.readside import Window, decisions_page, parse_instant
from custodes.node import Node
from custodes.registry.queries import MAX_INDEX, AgentFilter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/registry", tags=["registry"])
# The public view without a token, the private one with it.
_MAYBE_TOKEN: dict[str, Any] = optional_token()
AsOf = Annotated[int | None, Query(ge=0, le=MAX_INDEX, description="a log index")]


def _with_proof(node: Node, answer: dict[str, Any]) -> dict[str, Any]:
    index = answer["entry_index"]
    size, _ = node.store.tree_size()
    if index < size:
        answer["proof"] = proof_json(node, node.record_proofs.inclusion(index, size), size)
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
    """A RegistryChange (operator, agent, key or model: register, update, rotate, retire)
    signed by the acting principal's registered key, with that principal's API token.
    The authority rules decide who may do what (an operator for its own agents, the
    home regulator for any). Private fields travel beside the envelope, committed to
    in it. Answers with the log index."""
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
    """Agents matching every filter given, a page at a time (after: the last id of the
    previous page). Public view without a token; a principal entitled to them also
    sees private fields."""
    where = AgentFilter(jurisdiction, sector, status, operator, skill)
    return get_node(request).queries.agents(where, limit=limit, after=after, reader=caller(request))


@router.get(
    "/agents/{agent_id}",
    summary="One agent, now or as of a log index, with proof",
    responses=errors(400, 401, 403, 404, 422),
    openapi_extra=_MAYBE_TOKEN,
)
def get_agent(request: Request, agent_id: str, as_of: AsOf = None) -> dict[str, Any]:
    """The agent's record and status now, or as it was at log index as_of, with the log
    index of the entry it comes from and that entry's inclusion proof (null while not
    yet under a checkpoint). Public view without a token."""
    node = get_node(request)
    answer = node.queries.agent(agent_id, as_of=as_of, reader=caller(request))
    return _with_proof(node, answer)


_INSTANT = "an RFC 3339 instant with its offset, e.g. 2025-01-02T03:04:05Z"


@router.get(
    "/agents/{agent_id}/decisions",
    summary="An agent's logged decisions by time, each with its inclusion proof",
    description=(
        "The agent's decision records whose `decided_at` (as the agent signed it) is in "
        "[`from`, `to`): `from` inclusive, `to` exclusive, either left open. Ordered by "
        "`decided_at`, then log index. Only integrated entries; every item's proof is "
        "against `tree_size`, whose signed checkpoint (with cosignatures) is `checkpoint`. "
        "Pass `next_cursor` as `cursor` for the next page: later pages answer against "
        "the same checkpoint. Public, as the log's entry bundles are; committed records "
        "carry `clear` (salt and record) for an entitled caller, and such a read is logged."
    ),
    responses=errors(400, 404, 422),
    openapi_extra=_MAYBE_TOKEN,
)
def list_decisions(
    request: Request,
    agent_id: str,
    start: Annotated[str | None, Query(alias="from", description=_INSTANT)] = None,
    end: Annotated[str | None, Query(alias="to", description=_INSTANT)] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    window = Window(parse_instant("from", start), parse_instant("to", end))
    return decisions_page(get_node(request), agent_id, window, cursor, limit, caller(request))


@router.get(
    "/operators",
    summary="Registered operators",
    responses=errors(401, 403),
    openapi_extra=bearer(),
)
def list_operators(request: Request) -> list[dict[str, Any]]:
    """Every registered operator (API token)."""
    require_caller(request)
    return get_node(request).queries.operators()


@router.get(
    "/operators/{operator_id}",
    summary="One operator, now or as of a log index",
    responses=errors(400, 401, 403, 404, 422),
    openapi_extra=_MAYBE_TOKEN,
)
def get_operator(request: Request, operator_id: str, as_of: AsOf = None) -> dict[str, Any]:
    """The operator's record now, or at log index as_of, with its entry's inclusion proof.
    Address and contact only for principals entitled to them."""
    node = get_node(request)
    answer = node.queries.operator(operator_id, as_of=as_of, reader=caller(request))
    return _with_proof(node, answer)


@router.get("/models", summary="Registered models", responses=errors())
def list_models(request: Request) -> list[dict[str, Any]]:
    """Every registered model, with its declared training compute. Public."""
    return get_node(request).queries.models()


@router.get(
    "/models/{model_id}",
    summary="One model, now or as of a log index",
    responses=errors(400, 404, 422),
)
def get_model(request: Request, model_id: str, as_of: AsOf = None) -> dict[str, Any]:
    """The model's record now, or at log index as_of, with its entry's inclusion proof.
    Public."""
    node = get_node(request)
    return _with_proof(node, node.queries.model(model_id, as_of=as_of))
