"""Request helpers shared by the routers: the node, bounded body reads, admin auth."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from custodes.errors import AuthError, BadRequest
from custodes.ledger.canonical import parse_canonical
from custodes.node import Node
from custodes.registry.principals import Principal

__all__ = ["caller", "get_node", "read_body", "read_json", "require_admin", "require_caller"]


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(
            f"request body is {declared} bytes; the limit is {limit}",
            code="body_too_large",
            status=413,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(
                f"request body exceeds the {limit}-byte limit", code="body_too_large", status=413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def require_admin(request: Request) -> None:
    node = get_node(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError(
            "this operation needs the node's admin token as a Bearer token", code="missing_token"
        )
    if not node.admin_token.matches(token):
        raise AuthError("the admin token is not valid for this node", code="bad_token", status=403)


def caller(request: Request) -> Principal | None:
    """The principal behind the bearer token, or None for the public (no token)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("use 'Authorization: Bearer <API token>'", code="bad_token")
    return get_node(request).tokens.authenticate(token)


def require_caller(request: Request) -> Principal:
    principal = caller(request)
    if principal is None:
        raise AuthError(
            "this operation needs an API token (Authorization: Bearer ...)", code="missing_token"
        )
    return principal


async def read_json(request: Request, limit: int = 256 * 1024) -> Any:
    """A bounded, RFC 8785 canonical JSON body (signed envelopes must not be re-encoded)."""
    return parse_canonical(await read_body(request, limit))
