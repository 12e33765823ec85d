"""Admin (node token): register principals and issue or revoke their API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from custodes.api.bodies import read_body
from custodes.api.deps import get_node, require_admin
from custodes.api.openapi import bearer, errors, link_to_entry
from custodes.api.validation import parse_model
from custodes.registry.models import PrincipalRecord

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class TokenIn(BaseModel):
    principal: str = Field(min_length=1, max_length=128)
    scopes: list[str] | None = None
    ttl_seconds: int = Field(default=86_400, gt=0, le=366 * 86_400)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    body = {
        "required": True,
        "content": {"application/json": {"schema": model.model_json_schema()}},
    }
    return bearer({"requestBody": body})


def _principal_links() -> dict[str, Any]:
    """A new principal's entry can be read, and a token issued to it."""
    links = link_to_entry("/index")
    links["links"]["IssueAToken"] = {
        "operationId": "issue_token",
        "requestBody": {"principal": "$response.body#/id"},
    }
    return links


_REVOKE_LINK = {
    "links": {
        "RevokeIt": {
            "operationId": "revoke_token",
            "parameters": {"token_id": "$response.body#/token_id"},
        }
    }
}


@router.post(
    "/principals",
    status_code=201,
    responses={201: _principal_links(), **errors(400, 401, 403, 409, 413, 422)},
    openapi_extra=_schema(PrincipalRecord),
    summary="Register a regulator, auditor or operator with its signing key",
)
async def add_principal(request: Request) -> dict[str, Any]:
    require_admin(request)
    record = parse_model(PrincipalRecord, await read_body(request, 64 * 1024))
    index = await run_in_threadpool(get_node(request).registry.register_principal, record)
    return {"id": record.id, "index": index}


@router.post(
    "/tokens",
    status_code=201,
    operation_id="issue_token",
    responses={201: _REVOKE_LINK, **errors(400, 401, 403, 404, 413, 422)},
    openapi_extra=_schema(TokenIn),
    summary="Issue an API token for a principal (the secret is shown once)",
)
async def add_token(request: Request) -> dict[str, Any]:
    require_admin(request)
    body = parse_model(TokenIn, await read_body(request, 64 * 1024))
    node = get_node(request)
    return await run_in_threadpool(node.tokens.issue, body.principal, body.scopes, body.ttl_seconds)


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    summary="Revoke an API token",
    operation_id="revoke_token",
    responses=errors(401, 403, 404, 422),
    openapi_extra=bearer(),
)
async def revoke_token(token_id: str, request: Request) -> Response:
    require_admin(request)
    await run_in_threadpool(get_node(request).tokens.revoke, token_id)
    return Response(status_code=204)
