"""The registry side of the API: principals (admin), changes signed here, public reads.

Every change is signed with the acting principal's own key and sent with its API token
(``_Core._submit``); the node checks that both name the same principal.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel

from custodes.client.core import Auth, _Core
from custodes.registry.models import (
    AgentChanges,
    AgentRecord,
    AgentRegister,
    AgentRotateKey,
    AgentUpdate,
    ModelRecord,
    ModelRegister,
    ModelRetire,
    ModelUpdate,
    OperatorRecord,
    OperatorRegister,
    OperatorUpdate,
    new_order_id,
)
from custodes.registry.service import REGISTRY_TYPE

__all__ = ["RegistryApi", "new_order_id"]


def _now() -> datetime:
    return datetime.now(UTC)


def _b64(keys: Sequence[bytes]) -> tuple[str, ...]:
    return tuple(base64.b64encode(k).decode() for k in keys)


class RegistryApi(_Core):
    # -- principals and tokens (the node's admin token) -----------------------------------

    def register_principal(
        self, pid: str, *, role: str, jurisdiction: str, public_key: bytes, name: str | None = None
    ) -> int:
        """Register a regulator, auditor, operator or researcher; return its log index."""
        body = {
            "id": pid,
            "role": role,
            "jurisdiction": jurisdiction,
            "name": name or pid,
            "public_key": base64.b64encode(public_key).decode(),
        }
        answer = self._json(
            "POST", "/api/v1/admin/principals", content=orjson.dumps(body), auth=Auth.ADMIN
        )
        return int(answer["index"])

    def issue_token(
        self, principal: str, *, scopes: list[str] | None = None, ttl_seconds: int | None = None
    ) -> dict[str, Any]:
        """A fresh API token for ``principal``: ``{"token", "token_id", ...}`` (shown once)."""
        body = {"principal": principal, "scopes": scopes, "ttl_seconds": ttl_seconds}
        content = orjson.dumps({k: v for k, v in body.items() if v is not None})
        answer: dict[str, Any] = self._json(
            "POST", "/api/v1/admin/tokens", content=content, auth=Auth.ADMIN
        )
        return answer

    def revoke_token(self, token_id: str) -> None:
        self._send("DELETE", f"/api/v1/admin/tokens/{token_id}", auth=Auth.ADMIN)

    # -- changes, signed by the acting principal ------------------------------------------

    def _change(self, change: BaseModel) -> int:
        return int(self._submit("/api/v1/registry/entries", REGISTRY_TYPE, change)["index"])

    def register_operator(self, record: OperatorRecord) -> int:
        return self._change(OperatorRegister(actor=self._actor(), at=_now(), operator=record))

    def update_operator(self, record: OperatorRecord) -> int:
        return self._change(OperatorUpdate(actor=self._actor(), at=_now(), operator=record))

    def register_agent(
        self,
        record: AgentRecord,
        keys: Sequence[bytes],
        *,
        agent_card: dict[str, Any] | None = None,
        agent_card_keys: dict[str, dict[str, Any]] | None = None,
    ) -> int:
        change = AgentRegister(
            actor=self._actor(),
            at=_now(),
            agent=record,
            keys=_b64(keys),
            agent_card=agent_card,
            agent_card_keys=agent_card_keys,
        )
        return self._change(change)

    def update_agent(self, agent_id: str, changes: AgentChanges) -> int:
        actor = self._actor()
        return self._change(AgentUpdate(actor=actor, at=_now(), agent_id=agent_id, changes=changes))

    def rotate_key(
        self, agent_id: str, add: Sequence[bytes] = (), retire: Sequence[str] = ()
    ) -> int:
        change = AgentRotateKey(
            actor=self._actor(), at=_now(), agent_id=agent_id, add=_b64(add), retire=tuple(retire)
        )
        return self._change(change)

    def register_model(self, record: ModelRecord) -> int:
        return self._change(ModelRegister(actor=self._actor(), at=_now(), model=record))

    def update_model(self, record: ModelRecord) -> int:
        """Correct a model's record (as its holder or its home regulator)."""
        return self._change(ModelUpdate(actor=self._actor(), at=_now(), model=record))

    def retire_model(self, model_id: str, reason: str) -> int:
        actor = self._actor()
        return self._change(ModelRetire(actor=actor, at=_now(), model_id=model_id, reason=reason))

    # -- reads (public; private fields only where the token entitles) ---------------------

    def agent(self, agent_id: str, as_of: int | None = None) -> dict[str, Any]:
        """An agent as this principal (or the public) may see it, with its proof."""
        return self._read(f"/api/v1/registry/agents/{agent_id}", as_of=as_of)

    def agents(
        self,
        *,
        jurisdiction: str | None = None,
        sector: str | None = None,
        status: str | None = None,
        operator: str | None = None,
        skill: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> dict[str, Any]:
        """Search agents: ``{"items": [{"record", "status", ...}], ...}``."""
        where = {"jurisdiction": jurisdiction, "sector": sector, "status": status}
        more = {"operator": operator, "skill": skill, "limit": limit, "after": after}
        return self._read("/api/v1/registry/agents", **where, **more)

    def operator(self, operator_id: str, as_of: int | None = None) -> dict[str, Any]:
        return self._read(f"/api/v1/registry/operators/{operator_id}", as_of=as_of)

    def operators(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/api/v1/registry/operators")
        return found

    def model(self, model_id: str, as_of: int | None = None) -> dict[str, Any]:
        return self._read(f"/api/v1/registry/models/{model_id}", as_of=as_of)

    def models(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/api/v1/registry/models")
        return found

    def decisions(
        self,
        agent_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """An agent's decisions in ``[start, end)``, a page at a time, each with its index
        and inclusion proof: ``{"items", "next_cursor", "tree_size", "checkpoint"}``."""
        window = {"from": _rfc3339(start), "to": _rfc3339(end)}
        path = f"/api/v1/registry/agents/{agent_id}/decisions"
        return self._read(path, **window, cursor=cursor, limit=limit)

    def _read(self, path: str, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self._json("GET", path, params=params)
        return answer


def _rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
