"""The alliance side of the API: the roster, its chain, finality and the witness policy."""

from __future__ import annotations

from typing import Any

from custodes.client.core import _Core
from custodes.ledger.canonical import canonical_dumps

__all__ = ["FederationApi"]

_BASE = "/api/v1/federation"


class FederationApi(_Core):
    def roster(self, version: int | None = None) -> dict[str, Any]:
        """``GET /api/v1/federation/roster``: the version in force (or ``version``), with
        its digest, the log index of its entry and the document."""
        found: dict[str, Any] = self._json("GET", f"{_BASE}/roster", params={"version": version})
        return found

    def roster_chain(self) -> list[dict[str, Any]]:
        """Every roster version the node applied, oldest first."""
        found: list[dict[str, Any]] = self._json("GET", f"{_BASE}/roster/chain")["versions"]
        return found

    def apply_roster(self, document: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/v1/federation/roster``: apply the next version (status ``applied``
        or ``already_applied``); a refusal raises with the node's error code."""
        answer: dict[str, Any] = self._json(
            "POST", f"{_BASE}/roster", content=canonical_dumps(document)
        )
        return answer

    def federation_checkpoint(self) -> dict[str, Any]:
        """The node's newest checkpoint, its member cosigners and whether it is final."""
        found: dict[str, Any] = self._json("GET", f"{_BASE}/checkpoint")
        return found

    def witness_policy(self) -> str:
        """The alliance's witness policy in C2SP tlog-policy form."""
        return self._send("GET", f"{_BASE}/policy").text
