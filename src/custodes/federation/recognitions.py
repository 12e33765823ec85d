"""Recognitions across the alliance, read where they are: here and in every peer mirror.

A member's recognition decisions are entries on *its* log (custodes.audits.store); this
node projects its own into its database, and each peer's into that peer's mirror
(custodes.federation.mirror: same schema, verified against the peer's checkpoints). So
"is this agent recognised in France, for its current model and card?" is one indexed
query on the French mirror, with no call to France: what the deployment gate (lease
issuance) and the counterparty checks ask. A mirror that is missing answers nothing
(fail closed: no recognition known there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from custodes.audits.store import InForce, agent_digests, recognition_in_force, recognitions_of
from custodes.errors import NotFound
from custodes.federation.lookup import home_party
from custodes.federation.mirror import PeerMirror
from custodes.federation.state import Federation
from custodes.store.db import read_tx

__all__ = ["AllianceRecognitions"]


class AllianceRecognitions:
    def __init__(
        self,
        engine: Engine,
        federation: Federation,
        mirror_of: Callable[[str], PeerMirror | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self.federation, self._mirror_of, self.clock = (
            engine,
            federation,
            mirror_of,
            clock,
        )

    def engine_of(self, code: str) -> Engine | None:
        """The database holding party ``code``'s log projections: ours, or its mirror."""
        if code == self.federation.jurisdiction:
            return self._engine
        mirror = self._mirror_of(code)
        return None if mirror is None else mirror.engine

    def digests(self, agent_id: str) -> tuple[str | None, str | None]:
        """The agent's current model and AgentCard digests, from its home's registry
        (raises NotFound when the home or its mirror does not know the agent)."""
        home = home_party(self.federation.roster, agent_id).code
        engine = self.engine_of(home)
        if engine is None:
            raise NotFound(
                f"this node has no mirror of {home}'s registry yet; try again shortly",
                code="mirror_unavailable",
            )
        with read_tx(engine) as conn:
            return agent_digests(conn, agent_id)

    def in_force(
        self,
        agent_id: str,
        jurisdiction: str,
        *,
        model_digest: str | None,
        card_digest: str | None,
        now: float | None = None,
    ) -> InForce | None:
        """``jurisdiction``'s recognition in force for the agent with these digests."""
        engine = self.engine_of(jurisdiction)
        if engine is None:
            return None
        with read_tx(engine) as conn:
            return recognition_in_force(
                conn,
                agent_id,
                jurisdiction,
                model_digest=model_digest,
                card_digest=card_digest,
                now=self.clock() if now is None else now,
            )

    def decisions(self, agent_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every party's latest decision on each attestation of the agent, by party."""
        found: dict[str, list[dict[str, Any]]] = {}
        roster = self.federation.roster
        codes = [p.code for p in roster.body.parties] if roster else [self.federation.jurisdiction]
        for code in codes:
            engine = self.engine_of(code)
            if engine is None:
                continue
            with read_tx(engine) as conn:
                rows = [r for r in recognitions_of(conn, agent_id) if r["jurisdiction"] == code]
            if rows:
                found[code] = rows
        return found
