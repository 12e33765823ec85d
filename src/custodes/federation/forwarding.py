"""OrderForwarder: a host regulator's order for a foreign agent, sent to the agent's home.

The issuing node checks what it can (the regulator's token and signature here, one agent
homed at another active party, a territorial order only in the regulator's own
territory, this node not a partner), writes the forward to its outbox
(``custodes.killswitch.outbox``) and tries to deliver it at once. The home's answer
comes back to the regulator: its index and order on success; its 4xx as the same 4xx
(``ForwardRefused``); and when the home cannot be reached, 202 with the message id. A
relay thread (on the leading worker) then retries every queued forward with backoff until
the home answers 2xx or a final 4xx: at-least-once here, exactly-once effects with the
home's inbox (docs/design/0026).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from custodes.errors import AuthError, BadRequest, CustodesError
from custodes.federation.forwarded import forward_digest, sign_forward
from custodes.federation.roster import Party
from custodes.federation.state import Federation
from custodes.killswitch.outbox import OrderOutbox, OutboxRow, OutboxState
from custodes.ledger.dsse import EnvelopeSigner
from custodes.registry.models import KillOrder
from custodes.registry.principals import Principal
from custodes.registry.service import ORDER_TYPE, RegistryService

__all__ = ["ForwardRefused", "OrderForwarder", "agent_home"]

log = logging.getLogger("custodes.federation.forwarding")
FORWARD_PATH = "/api/v1/federation/orders"
_RETRYABLE = {408, 425, 429}  # and 409 in_flight: the home is still handling it


class ForwardRefused(CustodesError):
    """The agent's home node refused a forwarded order: its status and code, as it said."""


def agent_home(agent_id: str) -> str | None:
    """The jurisdiction an agent id names (``urn:custodes:gb:agent:x`` → ``GB``)."""
    parts = agent_id.split(":")
    if len(parts) < 3 or parts[0] != "urn" or parts[1] != "custodes" or len(parts[2]) != 2:
        return None
    return parts[2].upper()


def _peek_agent(obj: Any) -> str | None:
    """The agent an order envelope names, read without checking anything (None: none)."""
    try:
        payload = orjson.loads(base64.b64decode(obj["payload"], validate=True))
        agent = payload.get("agent_id")
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    return agent if isinstance(agent, str) else None


class OrderForwarder:
    def __init__(
        self,
        federation: Federation,
        registry: RegistryService,
        outbox: OrderOutbox,
        node: EnvelopeSigner,
        *,
        leading: Callable[[], bool] = lambda: True,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
    ) -> None:
        self._federation, self._registry, self.outbox = federation, registry, outbox
        self._node, self._leading, self._clock = node, leading, clock
        self._retry = (retry_initial, retry_max)
        self._http = http or httpx.Client(timeout=timeout)
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    # -- issuing ------------------------------------------------------------------
    def is_foreign(self, obj: Any) -> bool:
        """Whether an order body names one agent homed at another jurisdiction."""
        agent = _peek_agent(obj)
        home = None if agent is None else agent_home(agent)
        return home is not None and home != self._federation.jurisdiction

    def forward(self, obj: Any, principal: Principal) -> OutboxRow:
        """Check, keep and try to deliver a host regulator's order; the outbox row after
        the first attempt (``delivered`` or ``queued``), or ForwardRefused."""
        envelope = self._registry.signed_by(obj, ORDER_TYPE, principal)
        order = _order(envelope.payload)
        home = self._check(order, principal)
        now = self._clock()
        message_id = str(uuid.uuid4())
        me = self._federation.jurisdiction
        forward = sign_forward(message_id, me, home.code, envelope, node=self._node, now=now)
        row = OutboxRow(
            message_id=message_id,
            recipient=home.code,
            issuer=principal.id,
            order_id=order.order_id,
            agent_id=order.agent_id or "",
            digest=forward_digest(forward),
            body=forward.to_bytes(),
            state="queued",
            attempts=0,
            next_attempt=now + self._retry[0],  # the relay leaves the first try to us
            created_at=now,
        )
        self.outbox.add(row)
        delivered = self.deliver(row)
        if delivered.state == "refused":
            raise _refusal(delivered)
        if delivered.state == "queued":
            self._wake.set()  # the relay takes it from here
        return delivered

    def _check(self, order: KillOrder, principal: Principal) -> Party:
        me = self._federation.me
        if me is None:
            raise BadRequest(
                "this node has no alliance roster: issue the order at the agent's home node",
                code="no_roster",
                status=409,
            )
        if me.status != "member":
            raise AuthError(
                f"{me.code} is a {me.status} of the alliance and issues no kill orders",
                code="partner_no_orders",
                status=403,
            )
        if principal.role != "regulator" or principal.jurisdiction != me.code:
            raise AuthError(
                f"only a regulator of {me.code} forwards orders from this node",
                code="not_host_regulator",
                status=403,
            )
        if order.scope == "territorial" and order.territory != principal.jurisdiction:
            raise AuthError(
                f"a host regulator orders only in its own territory ({principal.jurisdiction}),"
                f" not in {order.territory}",
                code="not_own_territory",
                status=403,
            )
        return self._home(order)

    def _home(self, order: KillOrder) -> Party:
        code = agent_home(order.agent_id or "") or "?"
        party = self._federation.party(code)
        if party is None or not party.active:
            raise BadRequest(
                f"the agent's home jurisdiction {code} is not an active party of the alliance",
                code="unknown_home",
                status=422,
            )
        return party

    # -- delivering ---------------------------------------------------------------
    def deliver(self, row: OutboxRow) -> OutboxRow:
        """One attempt to hand ``row`` to its home node; the row as it stands after."""
        party = self._federation.party(row.recipient)
        if party is None or not party.active:
            self.outbox.postpone(row.message_id, "the home is not active", self._delay(row))
            return self.outbox.get(row.message_id)
        try:
            response = self._http.post(
                party.url + FORWARD_PATH,
                content=row.body,
                headers={
                    "Idempotency-Key": f'"{row.message_id}"',
                    "Content-Type": "application/json",
                },
            )
        except httpx.HTTPError as exc:
            why = f"{party.url} unreachable: {exc}"
            self.outbox.postpone(row.message_id, why, self._delay(row))
            return self.outbox.get(row.message_id)
        return self._record(row, response)

    def _record(self, row: OutboxRow, response: httpx.Response) -> OutboxRow:
        status = response.status_code
        try:
            answer = response.json()
        except ValueError:
            answer = {"body": response.text[:500]}
        final = 200 <= status < 300 or (400 <= status < 500 and not _retryable(status, answer))
        if not final:
            why = f"the home answered HTTP {status}"
            self.outbox.postpone(row.message_id, why, self._delay(row))
            return self.outbox.get(row.message_id)
        state: OutboxState = "delivered" if status < 300 else "refused"
        if not self.outbox.settle(row.message_id, state, status, answer):
            return self.outbox.get(row.message_id)  # another attempt settled it first
        return replace(
            row, state=state, attempts=row.attempts + 1, answer_status=status, answer=answer
        )

    def _delay(self, row: OutboxRow) -> float:
        initial, most = self._retry
        return float(min(initial * 2 ** min(row.attempts, 16), most))

    # -- the relay ----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._relay, name="order-relay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._http.close()

    def _relay(self) -> None:
        while not self._stop.is_set():
            pause = self._retry[1]
            try:
                if self._leading():
                    self.relay_once()
                    pause = self._pause()
            except Exception:  # a transient database error: the next round retries
                log.exception("relaying forwarded orders failed; retrying")
            self._wake.wait(pause)
            self._wake.clear()

    def relay_once(self) -> int:
        """Try every queued forward that is due once; how many were settled."""
        settled = 0
        for row in self.outbox.due():
            if self._stop.is_set():
                break
            settled += self.deliver(row).state != "queued"
        return settled

    def _pause(self) -> float:
        due = self.outbox.next_due()
        if due is None:
            return self._retry[1]
        return max(0.05, min(due - self._clock(), self._retry[1]))


def _order(payload: bytes) -> KillOrder:
    try:
        return KillOrder.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise BadRequest(
            f"kill order is invalid at {where}: {first['msg']}", code="invalid_payload", status=422
        ) from exc


def _retryable(status: int, answer: Any) -> bool:
    if status in _RETRYABLE:
        return True
    code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
    return status == 409 and code == "in_flight"


def _refusal(row: OutboxRow) -> ForwardRefused:
    answer = row.answer if isinstance(row.answer, dict) else {}
    error = _mapping(answer.get("error"))
    message = str(error.get("message") or "no reason given")
    return ForwardRefused(
        f"the {row.recipient} node (the agent's home) refused the order: {message}",
        code=str(error.get("code") or "refused_by_home"),
        status=row.answer_status or 422,
        detail=_mapping(error.get("detail"))
        | {"refused_by": row.recipient, "message_id": row.message_id},
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
