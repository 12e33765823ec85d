"""Request helpers shared by the routers: the node, the caller, admin auth."""

from __future__ import annotations

from fastapi import Request

from custodes.errors import AuthError
from custodes.node import Node
from custodes.registry.principals import Principal

__all__ = ["caller", "get_node", "require_admin", "require_caller"]


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


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
