"""RegistryClient: what regulators' and operators' tools use to change the registry.

Every change is signed here, with the actor's own key, and sent with the actor's API
token; the node checks that both name the same principal.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel

from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.registry.models import (
    AgentChanges,
    AgentRecord,
    AgentRegister,
    AgentRotateKey,
    AgentUpdate,
    KillOrder,
    ModelRecord,
    ModelRegister,
    ModelRetire,
    ModelUpdate,
    OperatorRecord,
    OperatorRegister,
    OperatorUpdate,
    Selector,
)
from custodes.registry.private import request_body, seal_change
from custodes.registry.service import ORDER_TYPE, REGISTRY_TYPE
from custodes.sdk.decisions import raise_for_error
from custodes.sdk.transport import node_client

__all__ = ["RegistryClient", "new_order_id"]


def new_order_id() -> str:
    return secrets.token_hex(12)


def _now() -> datetime:
    return datetime.now(UTC)


class RegistryClient:
    def __init__(
        self,
        base_url: str,
        principal: str,
        token: str,
        key: EnvelopeSigner,
        *,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.principal = principal
        self._key = key
        self._http = client or node_client(base_url, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, payload_type: str, change: BaseModel) -> dict[str, Any]:
        # Private fields (contacts, addresses) never enter the signed, logged payload:
        # it carries a salted commitment and the clear text travels beside it.
        sealed, opening = seal_change(change)
        payload = sealed.model_dump_json(exclude_none=True).encode()
        envelope = sign_envelope(payload_type, payload, [self._key]).to_json()
        body = canonical_dumps(request_body(envelope, opening))
        response = self._http.post(path, content=body, headers=self._headers)
        raise_for_error(response)
        answer: dict[str, Any] = response.json()
        return answer

    def _change(self, change: BaseModel) -> int:
        return int(self._post("/api/v1/registry/entries", REGISTRY_TYPE, change)["index"])

    def register_operator(self, record: OperatorRecord) -> int:
        change = OperatorRegister(actor=self.principal, at=_now(), operator=record)
        return self._change(change)

    def update_operator(self, record: OperatorRecord) -> int:
        return self._change(OperatorUpdate(actor=self.principal, at=_now(), operator=record))

    def register_agent(
        self,
        record: AgentRecord,
        keys: Sequence[bytes],
        *,
        agent_card: dict[str, Any] | None = None,
        agent_card_keys: dict[str, dict[str, Any]] | None = None,
    ) -> int:
        change = AgentRegister(
            actor=self.principal,
            at=_now(),
            agent=record,
            keys=tuple(base64.b64encode(k).decode() for k in keys),
            agent_card=agent_card,
            agent_card_keys=agent_card_keys,
        )
        return self._change(change)

    def update_agent(self, agent_id: str, changes: AgentChanges) -> int:
        change = AgentUpdate(actor=self.principal, at=_now(), agent_id=agent_id, changes=changes)
        return self._change(change)

    def rotate_key(
        self, agent_id: str, add: Sequence[bytes] = (), retire: Sequence[str] = ()
    ) -> int:
        change = AgentRotateKey(
            actor=self.principal,
            at=_now(),
            agent_id=agent_id,
            add=tuple(base64.b64encode(k).decode() for k in add),
            retire=tuple(retire),
        )
        return self._change(change)

    def register_model(self, record: ModelRecord) -> int:
        return self._change(ModelRegister(actor=self.principal, at=_now(), model=record))

    def update_model(self, record: ModelRecord) -> int:
        """Correct a model's record (as its holder or its home regulator)."""
        return self._change(ModelUpdate(actor=self.principal, at=_now(), model=record))

    def retire_model(self, model_id: str, reason: str) -> int:
        change = ModelRetire(actor=self.principal, at=_now(), model_id=model_id, reason=reason)
        return self._change(change)

    def order(
        self,
        op: str,
        agent_id: str | None,
        reason: str,
        *,
        territory: str | None = None,
        lifts: str | None = None,
        order_id: str | None = None,
        selector: Selector | None = None,
    ) -> dict[str, Any]:
        """Issue a kill order (``suspend``/``revoke``) or lift one (``reinstate``); for
        one agent, or (``agent_id`` None) every agent ``selector`` matches."""
        order = KillOrder(
            op=op,
            order_id=order_id or new_order_id(),
            agent_id=agent_id,
            selector=selector,
            scope="territorial" if territory else "global",
            territory=territory,
            reason=reason,
            actor=self.principal,
            at=_now(),
            lifts=lifts,
        )
        return self._post("/api/v1/kill-orders", ORDER_TYPE, order)

    def agent(self, agent_id: str, as_of: int | None = None) -> dict[str, Any]:
        """An agent as this principal may see it (private fields only where entitled)."""
        return self._get(f"/api/v1/registry/agents/{agent_id}", as_of)

    def operator(self, operator_id: str, as_of: int | None = None) -> dict[str, Any]:
        return self._get(f"/api/v1/registry/operators/{operator_id}", as_of)

    def _get(self, path: str, as_of: int | None) -> dict[str, Any]:
        params = {} if as_of is None else {"as_of": as_of}
        response = self._http.get(path, params=params, headers=self._headers)
        raise_for_error(response)
        answer: dict[str, Any] = response.json()
        return answer
