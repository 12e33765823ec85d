"""Node information, and signer registration with the admin token (until the registry)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from custodes.api.bodies import read_body
from custodes.api.deps import get_node, require_admin
from custodes.api.openapi import admin_token, errors, link_to_entry
from custodes.api.validation import parse_model
from custodes.errors import BadRequest
from custodes.ledger.dsse import key_thumbprint

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["node"])


# Names the registry gives keys (agents, principals, the node): a plain key under one of
# them would sign as that agent or principal, outside the registry's key history.
_REGISTRY_NAMES = ("urn:custodes:", "regulator:", "auditor:", "operator:", "node:")


def _refuse_registry_name(name: str) -> None:
    if name.startswith(_REGISTRY_NAMES):
        raise BadRequest(
            f"{name} is a name the registry gives keys; register an agent's key with "
            "`custodes registry agent register` or `rotate-key`, a principal's with "
            "`custodes registry principal`",
            code="registry_name",
            status=422,
        )


class SignerIn(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    public_key: str = Field(description="raw 32-byte Ed25519 public key, base64")


@router.get("/node", summary="This node's origin, keys and tree size", responses=errors())
def node_info(request: Request) -> dict[str, Any]:
    """What a client pins before it trusts anything from this node: the log's origin and
    verifier key (for checkpoints), the witness key (for cosignatures), the node's entry
    key (leases and pushed kill orders are signed with it), the current tree size and
    root, the jurisdiction, and the logs and witnesses it is configured with. Public."""
    node = get_node(request)
    size, root = node.store.tree_size()
    return {
        "origin": node.settings.origin,
        "tree_size": size,
        "root_hash": base64.b64encode(root).decode(),
        "log_vkey": node.log_signer.vkey(),
        "witness_vkey": node.cosigner.vkey(),
        "node_entry_keyid": node.entry_signer.keyid,
        "node_entry_public_key": base64.b64encode(node.entry_signer.public_key).decode(),
        "jurisdiction": node.settings.jurisdiction,
        "witnessed_logs": node.settings.witnessed_logs,
        "witnesses": [w.vkey for w in node.settings.witnesses],
    }


@router.get("/signers", summary="Keys allowed to sign entries", responses=errors())
def list_signers(request: Request) -> list[dict[str, object]]:
    """The keys registered with `POST /api/v1/admin/signers`, with their status. Public."""
    return get_node(request).signers.list()


@router.post(
    "/admin/signers",
    summary="Register a signer key (admin token)",
    status_code=201,
    responses={201: link_to_entry("/index"), **errors(400, 401, 403, 409, 413, 422)},
    openapi_extra=admin_token(
        {
            "requestBody": {
                "content": {"application/json": {"schema": SignerIn.model_json_schema()}},
                "required": True,
            }
        }
    ),
)
async def add_signer(request: Request) -> dict[str, Any]:
    """Register a raw Ed25519 key as a node-level signer (admin token), as a logged
    SignerRecord. Agents' decisions are accepted only from keys registered with the
    agent in the registry (POST /api/v1/registry/entries), not from these."""
    # Authenticate before reading the body: an anonymous caller learns nothing from it.
    require_admin(request)
    body = parse_model(SignerIn, await read_body(request, 64 * 1024))
    try:
        public_key = base64.b64decode(body.public_key, validate=True)
    except ValueError as exc:  # binascii.Error, or characters outside ASCII
        raise BadRequest("public_key must be base64", code="bad_public_key") from exc
    _refuse_registry_name(body.name)
    node = get_node(request)
    index = await run_in_threadpool(node.register_signer, body.name, public_key)
    return {"keyid": key_thumbprint(public_key), "name": body.name, "index": index}
