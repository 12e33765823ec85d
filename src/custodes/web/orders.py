"""Dashboard pages: issuing and lifting a kill order, signed by the regulator's own key.

The node never holds a key for the person signing (docs/design/0031-dashboard.md). Two
ways to sign, both ending in the same explicit confirmation and the same service the API
calls (``node.registry.issue_order``, or the forwarder for an agent homed elsewhere):

* in the browser: the node prepares the exact KillOrder payload (the signed-in principal
  as actor, a fresh order id, the time now) and shows it with its DSSE PAE bytes;
  ``static/sign.js`` signs those bytes with the key file the person picks (read in the
  page, never posted) through WebCrypto and fills in the signature;
* without JavaScript: ``custodes kill prepare ...`` prints a signed envelope, which is
  pasted into the page; the node decodes it and shows what it says first.

The node checks only the shape here; the registry checks the signature against the
principal's registered key and the principal's authority over the agent, as for the API.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.responses import Response

from custodes.errors import AuthError, BadRequest, NotFound
from custodes.federation.forwarding import agent_home
from custodes.ledger.dsse import Envelope, Signature, pae, parse_envelope
from custodes.registry.models import KillOrder, new_kill_order
from custodes.registry.principals import Principal
from custodes.registry.service import ORDER_TYPE
from custodes.web.auth import form, node_of, require_session
from custodes.web.render import page

__all__ = ["order_payload", "router"]

router = APIRouter()
_SIGNERS = ("regulator", "operator")
_OPS = ("suspend", "revoke")
_DONE = {"suspend": "suspended", "revoke": "revoked", "reinstate": "reinstated"}


def _signer(request: Request) -> Principal:
    """The signed-in regulator or operator (the public: a sign-in page, 401)."""
    principal = require_session(request).principal
    if principal.role not in _SIGNERS or not principal.can("orders:write"):
        raise AuthError(
            f"only a regulator or an operator with orders:write issues kill orders; "
            f"you are signed in as {principal.id}",
            code="forbidden",
            status=403,
        )
    return principal


def order_payload(order: KillOrder) -> bytes:
    """The bytes a KillOrder is signed as (the client's and the CLI's spelling)."""
    return order.model_dump_json(exclude_none=True).encode()


def _build(
    principal: Principal, fields: dict[str, str], op: str, agent_id: str | None, lifts: str | None
) -> KillOrder:
    territory = fields.get("territory", "").strip().upper() or None
    reason = fields.get("reason", "").strip()
    try:
        return new_kill_order(op, agent_id, reason, principal.id, territory=territory, lifts=lifts)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "order"
        raise BadRequest(
            f"the order is not valid: {where}: {first['msg']}", code="bad_order"
        ) from exc


def _known_order(request: Request, order_id: str) -> dict[str, Any]:
    for row in node_of(request).queries.orders():
        if row["order_id"] == order_id:
            return row
    raise NotFound(f"no order {order_id} was issued at this node", code="unknown_order")


def _form_page(request: Request, principal: Principal, **ctx: Any) -> Response:
    return page(
        request,
        "order_new.html",
        section="registry",
        title=f"{ctx['op'].capitalize()} {ctx['agent_id']}",
        principal=principal,
        **ctx,
    )


@router.get("/agents/{agent_id}/orders/new", include_in_schema=False)
def new_order(request: Request, agent_id: str, op: str = "suspend") -> Response:
    """The order's form: what, why and where (the public is sent to sign in)."""
    principal = _signer(request)
    if op not in _OPS:
        raise BadRequest("op is suspend or revoke (lift an order from its own page)", code="bad_op")
    node = node_of(request)
    if agent_home(agent_id) == node.settings.jurisdiction:  # ours: it must exist (404)
        node.queries.agent(agent_id, reader=principal)
    return _form_page(request, principal, op=op, agent_id=agent_id, lifts="", order=None)


@router.get("/orders/{order_id}/lift", include_in_schema=False)
def lift_order(request: Request, order_id: str) -> Response:
    """Lift an order: the same flow, a reinstate naming the order it lifts."""
    principal = _signer(request)
    row = _known_order(request, order_id)
    if row["status"] != "active":
        raise BadRequest(f"order {order_id} is {row['status']}, not in force", code="not_active")
    agent = row["agent_id"] or ""
    return _form_page(request, principal, op="reinstate", agent_id=agent, lifts=order_id, order=row)


@router.post("/agents/{agent_id}/orders/prepare", include_in_schema=False)
async def prepare(request: Request, agent_id: str) -> Response:
    """The exact payload to sign, with its PAE bytes, for the page's signing script."""
    fields = await form(request)
    principal = _signer(request)
    op = fields.get("op", "")
    if op not in (*_OPS, "reinstate"):
        raise BadRequest("op is suspend, revoke or reinstate", code="bad_op")
    lifts = fields.get("lifts") or None
    agent = None if agent_id == "-" else agent_id  # "-": a lifted order naming no one agent
    order = _build(principal, fields, op, agent, lifts)
    payload = order_payload(order)
    return page(
        request,
        "order_sign.html",
        section="registry",
        title=f"Sign: {op} {agent_id}",
        order=order,
        payload_json=json.dumps(orjson.loads(payload), indent=2),
        payload_b64=base64.b64encode(payload).decode(),
        pae_b64=base64.b64encode(pae(ORDER_TYPE, payload)).decode(),
        keyid=principal.keyid,
        principal=principal,
        confirm=_confirm_text(order),
    )


def _confirm_text(order: KillOrder) -> str:
    where = f" in {order.territory}" if order.territory else ""
    lifted = f" (lifting order {order.lifts})" if order.lifts else ""
    return f"{order.op} {order.agent_id or 'the agents of the order'}{where}{lifted}"


def _pasted(text: str) -> Envelope:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise BadRequest(
            "paste the whole envelope `custodes kill prepare` printed (JSON)", code="bad_envelope"
        ) from exc
    envelope = parse_envelope(obj)
    if envelope.payload_type != ORDER_TYPE:
        raise BadRequest(f"expected payloadType {ORDER_TYPE}", code="unsupported_payload_type")
    return envelope


def _order_of(envelope: Envelope, principal: Principal) -> KillOrder:
    try:
        order = KillOrder.model_validate_json(envelope.payload)
    except ValidationError as exc:
        raise BadRequest("the envelope does not hold a valid kill order", code="bad_order") from exc
    if order.actor != principal.id:
        raise AuthError(
            f"this order is signed as {order.actor}, but you are signed in as {principal.id}",
            code="actor_mismatch",
            status=403,
        )
    return order


@router.post("/orders/review", include_in_schema=False)
async def review(request: Request) -> Response:
    """A pasted envelope (the CLI path): what it says, before the final submit."""
    fields = await form(request)
    principal = _signer(request)
    envelope = _pasted(fields.get("envelope", ""))
    order = _order_of(envelope, principal)
    return page(
        request,
        "order_confirm.html",
        section="registry",
        title=f"Confirm: {order.op} {order.agent_id}",
        order=order,
        envelope=envelope.to_bytes().decode(),
        keyids=[s.keyid for s in envelope.signatures],
        confirm=_confirm_text(order),
    )


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"the {what} is not base64", code="bad_form") from exc


def _submitted(fields: dict[str, str]) -> Envelope:
    """The envelope a form carries: pasted whole, or a payload and the page's signature."""
    if fields.get("envelope"):
        return _pasted(fields["envelope"])
    signature, keyid = fields.get("signature", ""), fields.get("keyid", "")
    if not signature or not keyid:
        raise BadRequest(
            "the order is not signed: pick your key file on the previous page "
            "(or sign with `custodes kill prepare` and paste the envelope)",
            code="unsigned",
        )
    payload = _b64(fields.get("payload_b64", ""), "payload")
    return Envelope(ORDER_TYPE, payload, (Signature(keyid, _b64(signature, "signature")),))


@router.post("/orders/submit", include_in_schema=False)
async def submit(request: Request) -> Response:
    """Issue the confirmed order with the session's principal, as the API would."""
    fields = await form(request)
    principal = _signer(request)
    envelope = _submitted(fields)
    order = _order_of(envelope, principal)
    if fields.get("confirm") != _confirm_text(order):
        raise BadRequest(
            f"tick the box confirming that you mean to {_confirm_text(order)}; nothing was issued",
            code="not_confirmed",
        )
    answer = await run_in_threadpool(_issue, request, envelope.to_json(), principal)
    return page(
        request,
        "order_done.html",
        section="registry",
        title=f"Order {order.order_id}",
        order=order,
        answer=answer,
        done=_DONE[order.op],
    )


def _issue(request: Request, body: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """``api/killswitch.py``'s ``issue_order``, for a page: the same services, same checks."""
    node = node_of(request)
    answer: dict[str, Any] = {"index": None, "status": None, "forwarded_to": None, "state": None}
    if node.forwarder.is_foreign(body):  # a host regulator's order: to the home node
        row = node.forwarder.forward(body, principal)
        home = row.answer or {}
        return answer | {
            "index": home.get("index"),
            "status": home.get("status"),
            "forwarded_to": row.recipient,
            "state": row.state,
            "message_id": row.message_id,
        }
    issued = node.registry.issue_order(body, principal)
    agent = issued.order.agent_id
    return answer | {
        "index": issued.index,
        "status": node.registry.status(agent) if agent is not None else None,
    }
