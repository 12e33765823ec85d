"""Cross-border kill orders: the issuing node's outbox of orders forwarded to home nodes."""

from __future__ import annotations

from typing import Any

from custodes.client.core import Auth, _Core

__all__ = ["ForwardingApi"]


class ForwardingApi(_Core):
    def outbox(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """``GET /api/v1/federation/outbox``: the orders this node forwarded (a regulator's
        own, or all with the admin token), newest first, each with its state."""
        params: dict[str, Any] = {"limit": limit} | ({"state": state} if state else {})
        auth = self._outbox_auth()
        found: list[dict[str, Any]] = self._json(
            "GET", "/api/v1/federation/outbox", params=params, auth=auth
        )
        return found

    def forwarded(self, message_id: str) -> dict[str, Any]:
        """``GET /api/v1/federation/outbox/{message_id}``: one forward and its state
        (``queued``, ``delivered`` with the home's answer, or ``refused`` with its 4xx)."""
        auth = self._outbox_auth()
        found: dict[str, Any] = self._json(
            "GET", f"/api/v1/federation/outbox/{message_id}", auth=auth
        )
        return found

    def _outbox_auth(self) -> Auth:
        """The principal's token when the client holds one, else the admin token."""
        return Auth.PRINCIPAL if self._token else Auth.ADMIN
