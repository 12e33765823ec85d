"""Federation: the roster in force on this node, and who is told when it changes.

Every part of the node that depends on the alliance (witnessing, the witness's trusted
logs, foreign regulators, mirrors, forwarded orders, checkpoint gossip) reads the roster
from here and registers ``on_change`` to reconfigure itself at run time, without restarts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from custodes.federation.roster import Party, SignedRoster, quorum_of

__all__ = ["Federation"]

log = logging.getLogger("custodes.federation")


class Federation:
    def __init__(self, jurisdiction: str) -> None:
        self.jurisdiction = jurisdiction
        self._roster: SignedRoster | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[SignedRoster], None]] = []

    @property
    def roster(self) -> SignedRoster | None:
        return self._roster

    def install(self, roster: SignedRoster) -> None:
        """Put a *verified* roster in force and tell every listener."""
        with self._lock:
            self._roster = roster
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(roster)
            except Exception:  # one broken listener must not keep the roster from others
                log.exception("a roster listener failed on version %d", roster.version)

    def on_change(self, listener: Callable[[SignedRoster], None]) -> None:
        """Call ``listener`` with each roster installed from now on (and the current one)."""
        with self._lock:
            self._listeners.append(listener)
            current = self._roster
        if current is not None:
            listener(current)

    def party(self, code: str) -> Party | None:
        roster = self._roster
        return roster.body.party(code) if roster is not None else None

    @property
    def me(self) -> Party | None:
        return self.party(self.jurisdiction)

    def peers(self) -> list[Party]:
        """Active parties (members and partners) other than this node."""
        roster = self._roster
        if roster is None:
            return []
        return [p for p in roster.body.parties if p.active and p.code != self.jurisdiction]

    def members(self) -> list[Party]:
        roster = self._roster
        return roster.body.members() if roster is not None else []

    def quorum(self) -> int:
        """Cosignatures (or votes) that make a quorum of the members in force."""
        members = self.members()
        return quorum_of(len(members)) if members else 0
