"""Admin (node token): register principals and issue or revoke their API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from custodes.api.bodies import read_body
from custodes.api.deps import get_node, require_admin
from custodes.api.openapi import admin_token, errors, link_to_entry, model_body
from custodes.api.validation import parse_model
from custodes.config import Settings
from custodes.errors import BadRequest
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
    return admin_token({"requestBody": body})


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


def _refuse_foreign_regulator(roster: bool, record: PrincipalRecord, settings: Settings) -> None:
    """With an alliance roster in force, foreign regulators come from it, not the admin."""
    if roster and record.role == "regulator" and record.jurisdiction != settings.jurisdiction:
        raise BadRequest(
            f"{record.id} is a regulator of {record.jurisdiction}: with an alliance roster in "
            "force, foreign regulators are known from the roster (their party vouches for "
            "them); propose a roster version that lists it (`custodes federation roster "
            "propose`)",
            code="use_roster",
            status=409,
        )


@router.post(
    "/principals",
    status_code=201,
    responses={201: _principal_links(), **errors(400, 401, 403, 409, 413, 422)},
    openapi_extra=admin_token(model_body("PrincipalRecord")),
    summary="Register a regulator, auditor, operator or researcher with its signing key",
)
async def add_principal(request: Request) -> dict[str, Any]:
    """Admin token. Logs a PrincipalRecord: a regulator, auditor, operator or researcher of a
    jurisdiction with the raw Ed25519 key (base64) it signs its records with. Issue it
    an API token next (POST /api/v1/admin/tokens)."""
    require_admin(request)
    record = parse_model(PrincipalRecord, await read_body(request, 64 * 1024))
    node = get_node(request)
    _refuse_foreign_regulator(node.federation.roster is not None, record, node.settings)
    index = await run_in_threadpool(node.registry.register_principal, record)
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
    """Admin token. Issues an API token for a registered principal, with the scopes its
    role allows by default (or fewer) and a lifetime; the secret is in this answer
    only (the node keeps its hash)."""
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
    openapi_extra=admin_token(),
)
async def revoke_token(token_id: str, request: Request) -> Response:
    """Admin token. The token stops working at once (204)."""
    require_admin(request)
    await run_in_threadpool(get_node(request).tokens.revoke, token_id)
    return Response(status_code=204)
