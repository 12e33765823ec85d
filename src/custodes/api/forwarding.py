"""Cross-border kill orders between member nodes: the home's inbox, the sender's outbox."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from custodes.api.bodies import read_json
from custodes.api.deps import get_node, require_caller
from custodes.api.openapi import bearer, errors
from custodes.errors import AuthError
from custodes.node import Node
from custodes.registry.models import KillOrder

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/federation", tags=["federation"])


@router.post(
    "/orders",
    status_code=201,
    responses=errors(400, 403, 404, 409, 413, 422),
    summary="Receive a kill order another member's node forwards for an agent homed here",
)
async def receive_order(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(description='the sender\'s message id, a quoted UUID: "8e03978e-…"'),
    ] = None,
) -> JSONResponse:
    """A DSSE envelope of `application/vnd.custodes.forwarded-order+json` signed by the
    sending member's node entry key (from the roster), carrying a host regulator's own
    signed kill order, which a regulator the roster vouches for under the sending member
    must have signed. This node's authority rules then decide; the order is logged as the
    regulator signed it, and pushed. A retry of the same Idempotency-Key answers what the
    first did (200, no second entry); the same key with another body is 422; a retry
    while the first is being handled, 409."""
    body = await read_json(request)
    replayed, content = await run_in_threadpool(_receive, get_node(request), body, idempotency_key)
    return JSONResponse(content, status_code=200 if replayed else 201)


def _receive(node: Node, body: Any, key: str | None) -> tuple[bool, dict[str, Any]]:
    """Handle one forward (one trip to the thread pool): whether it was a replay, and the
    answer: the order's index, who sent and signed it, the agent's status here."""
    opened, answer = node.receiver.receive(body, key)
    order = KillOrder.model_validate_json(opened.order.payload)
    status = None if order.agent_id is None else node.registry.status(order.agent_id)
    return answer.replayed, {
        "index": answer.index,
        "order_id": answer.order_id,
        "from": opened.sender.code,
        "issuer": opened.issuer.id,
        "replayed": answer.replayed,
        "agent_id": order.agent_id,
        "status": status,
        "order": order.model_dump(mode="json"),
    }


def _viewer(request: Request) -> str | None:
    """None for the node's admin (every forward), else the regulator's id (its own)."""
    node = get_node(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token and node.admin_token.matches(token):
        return None
    principal = require_caller(request)
    if principal.role != "regulator":
        raise AuthError(
            "the outbox is shown to regulators and the node's admin", code="forbidden", status=403
        )
    return principal.id


@router.get(
    "/outbox",
    responses=errors(401, 403, 422),
    openapi_extra=bearer(),
    summary="Kill orders this node forwarded to agents' home nodes, and their state",
)
def outbox(
    request: Request,
    state: Annotated[Literal["queued", "delivered", "refused"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Forwards, newest first: `queued` (the home has not answered yet; retried with
    backoff), `delivered` (with the home's answer) or `refused` (with its 4xx). A
    regulator sees the forwards it issued; the node's admin (its token as the bearer
    token) sees all."""
    viewer = _viewer(request)
    rows = get_node(request).forwarder.outbox.rows(state, limit)
    return [r.public() for r in rows if viewer is None or r.issuer == viewer]


@router.get(
    "/outbox/{message_id}",
    responses=errors(401, 403, 404),
    openapi_extra=bearer(),
    summary="One forwarded kill order and its state",
)
def outbox_message(request: Request, message_id: str) -> dict[str, Any]:
    """One forward by its message id (the Idempotency-Key it was sent with)."""
    viewer = _viewer(request)
    row = get_node(request).forwarder.outbox.get(message_id)
    if viewer is not None and row.issuer != viewer:
        raise AuthError(
            "this forward was issued by another principal", code="forbidden", status=403
        )
    return row.public()
