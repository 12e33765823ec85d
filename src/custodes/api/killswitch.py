"""Kill orders (signed, logged, pushed over server-sent events) and operating leases."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from custodes.api.bodies import read_json
from custodes.api.deps import get_node, require_caller
from custodes.api.openapi import bearer, errors, signed_answer, signed_body
from custodes.errors import BadRequest
from custodes.killswitch.broadcast import PushSigner, Subscription
from custodes.killswitch.leases import LEASE_REQUEST_TYPE, LEASE_TYPE
from custodes.killswitch.outbox import OutboxRow
from custodes.node import Node
from custodes.registry.models import OPERATOR_ID, KillOrder
from custodes.registry.service import ORDER_TYPE, IssuedOrder
from custodes.store.db import read_tx

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["kill switch"])
_HEARTBEAT = 15.0


@router.post(
    "/kill-orders",
    status_code=201,
    responses={
        202: {"description": "forwarded; the home node has not answered yet"},
        **errors(400, 401, 403, 404, 409, 413, 422),
    },
    openapi_extra=bearer(signed_body(ORDER_TYPE, "the issuing regulator's registered key")),
    summary="Suspend, revoke or reinstate an agent, or every agent a selector matches "
    "(effective at once, pushed)",
)
async def issue_order(request: Request) -> Any:
    """A KillOrder signed by a regulator's registered key, with that regulator's API
    token: suspend or revoke an agent (globally, or in the regulator's own territory
    as a host regulator), or reinstate it by lifting an order. Logged, effective at
    once (no further leases) and pushed to every subscriber of the order stream.
    Answers with the log index and the agent's status now.

    An order for one agent homed at another member's node (a host regulator's territorial
    suspension) is forwarded there (docs/design/0026): the answer is the home node's
    (its index and order, 201), its refusal as the same 4xx, or 202 with the message id
    while the home cannot be reached (GET /api/v1/federation/outbox/{message_id})."""
    # Token look-ups read the database: keep them off the event loop, which also
    # serves the kill-order streams.
    principal = await run_in_threadpool(require_caller, request)
    envelope = await read_json(request)
    node = get_node(request)
    if node.forwarder.is_foreign(envelope):  # a host regulator's order: to the home node
        row = await run_in_threadpool(node.forwarder.forward, envelope, principal)
        return _forwarded(row)
    issued = await run_in_threadpool(node.registry.issue_order, envelope, principal)
    return await run_in_threadpool(_answer, node, issued)


def _forwarded(row: OutboxRow) -> Any:
    """The home's answer once it logged the order (201), or 202 while it is queued."""
    sent = {"message_id": row.message_id, "forwarded_to": row.recipient, "state": row.state}
    if row.state == "queued":
        return JSONResponse(sent | {"order_id": row.order_id}, status_code=202)
    return (row.answer or {}) | sent


def _answer(node: Node, issued: IssuedOrder) -> dict[str, Any]:
    order = issued.order
    answer: dict[str, Any] = {"index": issued.index, "order_id": order.order_id}
    if order.agent_id is not None:
        return answer | {"agent_id": order.agent_id, "status": node.registry.status(order.agent_id)}
    selector = None if order.selector is None else order.selector.model_dump(exclude_none=True)
    return answer | {
        "agent_id": None,
        "selector": selector,
        "agents": len(issued.covered),  # the list: GET /kill-orders/{order_id}/agents
        "status": _covered_status(order),
    }


def _covered_status(order: KillOrder) -> str:
    """What the order made of the agents it covers (each one's own status may say more)."""
    if order.op == "reinstate":
        return "lifted"
    done = "revoked" if order.op == "revoke" else "suspended"
    return done if order.territory is None else f"{done} in {order.territory}"


@router.get(
    "/kill-orders/{order_id}/agents",
    summary="The agents an order covers (one, or every agent its selector matched)",
    responses=errors(404, 422),
)
def order_agents(request: Request, order_id: str) -> dict[str, Any]:
    """The agents an order covers: the one it names, or every agent its selector matched
    in the registry at the order's log index (agents registered later are not covered).
    404 for an unknown order. Public."""
    return get_node(request).queries.order_agents(order_id)


@router.get(
    "/kill-orders",
    summary="Kill orders, optionally for one agent or only active",
    responses=errors(422),
)
def list_orders(
    request: Request, agent_id: str | None = None, active: bool = False
) -> list[dict[str, Any]]:
    """Kill orders with their log indices, for one agent (agent_id) and/or only those
    still in force (active=true). Public."""
    return get_node(request).queries.orders(agent_id, active_only=active)


def _snapshot(node: Node, agent_id: str | None) -> list[dict[str, Any]]:
    """The active orders, as stream events, so a (re)connecting subscriber misses none."""
    rows = node.queries.orders(agent_id, active_only=True)
    events = _logged(node, [row["issued_index"] for row in rows])
    if agent_id is not None:  # a selector order covering it, named for it (stream_view)
        return [e | {"order": e["order"] | {"agent_id": agent_id}} for e in events]
    return events


def _fleet_snapshot(node: Node, operator: str) -> list[dict[str, Any]]:
    """The active orders covering a fleet's agents, each listing those it covers."""
    found = node.queries.fleet_orders(operator)
    events = _logged(node, [row["issued_index"] for row, _agents in found])
    return [e | {"agents": agents} for e, (_row, agents) in zip(events, found, strict=True)]


def _logged(node: Node, indices: list[int]) -> list[dict[str, Any]]:
    events = []
    with read_tx(node.engine) as conn:
        for index in indices:
            data = node.store.entry_data(conn, index, index + 1)
            envelope = orjson.loads(data[0])
            payload = orjson.loads(base64.b64decode(envelope["payload"]))
            events.append({"index": index, "envelope": envelope, "order": payload})
    return events


def _sse(event: dict[str, Any], push: PushSigner) -> bytes:
    return b"event: order\ndata: " + orjson.dumps(push.sign(event)) + b"\n\n"


async def _events(
    request: Request,
    sub: Subscription,
    snapshot: list[dict[str, Any]],
    node: Node,
    push: PushSigner,
) -> AsyncIterator[bytes]:
    try:
        yield b": connected\n\n"
        for past in snapshot:
            yield _sse(past, push)
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=_HEARTBEAT)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            if event is None:
                return
            yield _sse(event, push)
    finally:
        node.broadcaster.unsubscribe(sub)


@router.get(
    "/kill-orders/stream",
    summary="Server-sent events: every kill order, as issued, countersigned by the node "
    "(for one agent, one operator's fleet, or all)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(422)},
)
async def stream_orders(
    request: Request,
    agent_id: Annotated[str | None, Query()] = None,
    nonce: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9a-f]{32,64}$",
            description="the subscriber's fresh challenge, echoed in every countersignature",
        ),
    ] = None,
    operator: Annotated[
        str | None,
        Query(
            pattern=OPERATOR_ID,
            description="a fleet's stream: the orders covering any agent of this operator, "
            "each pushed once with the covered agents listed",
        ),
    ] = None,
) -> StreamingResponse:
    """Server-sent events: on connecting, every active order; then each order as it is
    logged. Each `order` event carries the order, its envelope and log index, and a
    countersignature by the node's entry key bound to the subscriber's nonce and a
    sequence number, so a guard refuses forged, replayed or reordered events. Follow one
    agent (`agent_id`) or one operator's fleet (`operator`: each order once, listing the
    fleet's agents it covers). Comments (`: heartbeat`) keep the connection open. Public."""
    if agent_id is not None and operator is not None:
        raise BadRequest(
            "follow one agent (agent_id) or one operator's fleet (operator), not both",
            code="invalid_query",
            status=422,
        )
    node = get_node(request)
    push = PushSigner(node.entry_signer, nonce)
    sub = node.broadcaster.subscribe(agent_id, operator)  # before the snapshot: no gap
    if operator is not None:
        snapshot = await run_in_threadpool(_fleet_snapshot, node, operator)
    else:
        snapshot = await run_in_threadpool(_snapshot, node, agent_id)
    return StreamingResponse(
        _events(request, sub, snapshot, node, push),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/leases",
    status_code=201,
    responses={
        201: signed_answer(LEASE_TYPE, "the node's entry key"),
        **errors(400, 403, 404, 409, 413, 422),
    },
    openapi_extra=signed_body(LEASE_REQUEST_TYPE, "the agent's registered key"),
    summary="Ask for an operating lease (request signed by the agent's key)",
)
async def lease(request: Request) -> dict[str, Any]:
    """An agent asks for an operating lease with a LeaseRequest signed by its registered
    key (fresh nonce, current time). Answers with a DSSE envelope of a LeasePayload
    signed by the node's entry key: the jurisdictions it may act in and its expiry
    (at most 60 s for critical sectors). 403 while the agent is suspended or revoked."""
    envelope = await read_json(request, 16 * 1024)
    return await run_in_threadpool(get_node(request).leases.issue, envelope)


@router.get(
    "/agents/{agent_id}/lease",
    responses=errors(404),
    summary="An agent's lease state: its status and the newest lease granted to it (public)",
)
async def lease_state(agent_id: str, request: Request) -> dict[str, Any]:
    """The agent's status and the newest operating lease this node granted it (its id,
    key, jurisdictions, ``nbf``/``exp`` and whether it still runs), or ``last_lease``
    null if none was. ``acting_until`` is that lease's expiry while it runs: the latest
    moment the agent's guard lets it act, whatever order was issued since (it stops
    sooner on the pushed order). Public, as the agent's status is. 404 ``unknown_agent``."""
    return await run_in_threadpool(get_node(request).leases.state, agent_id)
