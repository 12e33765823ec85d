"""Cross-border look-ups through any node, verified here against the alliance roster."""

from __future__ import annotations

from typing import Any

from custodes.client.core import _Core
from custodes.federation.lookup import VerifiedLookup, verify_lookup
from custodes.federation.roster import SignedRoster

__all__ = ["AllianceApi", "verified_lookup"]


class AllianceApi(_Core):
    def alliance_agent(self, agent_id: str, roster: SignedRoster | None = None) -> dict[str, Any]:
        """Any alliance agent as this node knows it (its own, its mirror, or its home).

        With ``roster``, the answer is verified here before it is returned: the checkpoint
        signed by the home's log key in the roster, the record's inclusion proof, its
        entry; ``verified`` then says which members cosigned and whether it is final.
        """
        answer: dict[str, Any] = self._json("GET", f"/api/v1/alliance/agents/{agent_id}")
        if roster is not None:
            checked = verify_lookup(answer, roster)
            answer["verified"] = {
                "checkpoint_size": checked.checkpoint.size,
                "cosigners": list(checked.finality.cosigners),
                "quorum": checked.finality.needed,
                "final": checked.finality.final,
            }
        return answer

    def alliance_mirrors(self) -> list[dict[str, Any]]:
        """This node's mirror of each peer: size, age, alarm."""
        states: list[dict[str, Any]] = self._json("GET", "/api/v1/alliance/mirrors")
        return states


def verified_lookup(url: str, agent_id: str, roster: SignedRoster) -> VerifiedLookup:
    """Ask the node at ``url`` for ``agent_id`` and verify the answer against ``roster``
    (proof, checkpoint signature, cosignatures): the demo's one call."""
    from custodes.client.client import Client  # noqa: PLC0415 - the client imports this module

    with Client(url) as client:
        return verify_lookup(client.alliance_agent(agent_id), roster)
