"""Kill orders (signed, logged, pushed over server-sent events) and operating leases."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from custodes.api.bodies import read_json
from custodes.api.deps import get_node, require_caller
from custodes.api.openapi import bearer, errors, signed_answer, signed_body
from custodes.killswitch.broadcast import PushSigner, Subscription
from custodes.killswitch.leases import LEASE_REQUEST_TYPE, LEASE_TYPE
from custodes.node import Node
from custodes.registry.service import ORDER_TYPE
from custodes.store.db import read_tx

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["kill switch"])
_HEARTBEAT = 15.0


@router.post(
    "/kill-orders",
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
    openapi_extra=bearer(signed_body(ORDER_TYPE, "the issuing regulator's registered key")),
    summary="Suspend, revoke or reinstate an agent (effective at once, pushed)",
)
async def issue_order(request: Request) -> dict[str, Any]:
    """A KillOrder signed by a regulator's registered key, with that regulator's API
    token: suspend or revoke an agent (globally, or in the regulator's own territory
    as a host regulator), or reinstate it by lifting an order. Logged, effective at
    once (no further leases) and pushed to every subscriber of the order stream.
    Answers with the log index and the agent's status now."""
    # Token look-ups read the database: keep them off the event loop, which also
    # serves the kill-order streams.
    principal = await run_in_threadpool(require_caller, request)
    envelope = await read_json(request)
    node = get_node(request)
    index, order = await run_in_threadpool(node.registry.submit_order, envelope, principal)
    status = await run_in_threadpool(node.registry.status, order.agent_id)
    return {
        "index": index,
        "order_id": order.order_id,
        "agent_id": order.agent_id,
        "status": status,
    }


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
    events = []
    with read_tx(node.engine) as conn:
        for row in rows:
            data = node.store.entry_data(conn, row["issued_index"], row["issued_index"] + 1)
            envelope = orjson.loads(data[0])
            payload = orjson.loads(base64.b64decode(envelope["payload"]))
            events.append({"index": row["issued_index"], "envelope": envelope, "order": payload})
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
    summary="Server-sent events: every kill order, as issued, countersigned by the node",
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
) -> StreamingResponse:
    """Server-sent events: on connecting, every active order; then each order as it is
    logged. Each `order` event carries the order, its envelope and log index, and a
    countersignature by the node's entry key bound to the subscriber's nonce and a
    sequence number, so a guard refuses forged, replayed or reordered events.
    Comments (`: heartbeat`) keep the connection open. Public."""
    node = get_node(request)
    push = PushSigner(node.entry_signer, nonce)
    sub = node.broadcaster.subscribe(agent_id)  # before the snapshot: no gap
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
