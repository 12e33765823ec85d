"""An agent's recognitions across the alliance, verified here against the roster."""

from __future__ import annotations

from typing import Any

from custodes.client.core import _Core
from custodes.federation.recognition_lookup import VerifiedRecognitions, verify_recognitions
from custodes.federation.roster import SignedRoster

__all__ = ["TradeApi"]


class TradeApi(_Core):
    def alliance_recognitions(self, agent_id: str) -> dict[str, Any]:
        """``GET /api/v1/alliance/agents/{id}/recognitions``, as the node answers it."""
        answer: dict[str, Any] = self._json(
            "GET", f"/api/v1/alliance/agents/{agent_id}/recognitions"
        )
        return answer

    def verified_recognitions(self, agent_id: str, roster: SignedRoster) -> VerifiedRecognitions:
        """The agent's recognitions, each decision proven against ``roster``."""
        return verify_recognitions(self.alliance_recognitions(agent_id), roster)
