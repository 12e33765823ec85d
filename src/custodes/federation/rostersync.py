"""Roster versions reach every member: forwarded on apply, and pulled as catch-up.

When this node applies a version it forwards it (best effort, on this thread) to every
peer of the new roster (``POST /api/v1/federation/roster``); and every few seconds it
asks each peer for its current version (``GET /api/v1/federation/roster``) and applies,
one by one, the versions it lacks. Each peer verifies every version itself: a forward
carries no authority beyond the members' signatures inside it.
"""

from __future__ import annotations

import logging
import queue
import threading

import httpx

from custodes.errors import CustodesError
from custodes.federation.roster import Party, SignedRoster
from custodes.federation.rosterlog import RosterLog

__all__ = ["RosterSync"]

log = logging.getLogger("custodes.federation")
_PATH = "/api/v1/federation/roster"


class RosterSync:
    def __init__(
        self, roster_log: RosterLog, *, interval: float, client: httpx.Client | None = None
    ) -> None:
        self._roster_log = roster_log
        self._interval = interval
        self._client = client or httpx.Client(timeout=5.0)
        self._outbox: queue.Queue[SignedRoster | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="roster-sync", daemon=True)
        roster_log.on_applied(self._outbox.put)

    def start(self) -> None:
        if self._roster_log.federation.roster is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._outbox.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = self._interval if self._interval > 0 else None
            try:
                roster = self._outbox.get(timeout=timeout)
            except queue.Empty:
                roster = None
                self.catch_up()
            if roster is not None:
                self.forward(roster)

    def _peers(self) -> list[Party]:
        return self._roster_log.federation.peers()

    def forward(self, roster: SignedRoster) -> None:
        """Send ``roster`` to every peer it names; a peer that is down catches up later."""
        for party in self._peers():
            try:
                response = self._client.post(f"{party.url}{_PATH}", json=roster.document)
                if response.status_code >= 400:
                    log.warning(
                        "%s refused roster version %d: %s",
                        party.code,
                        roster.version,
                        response.text[:300],
                    )
            except httpx.HTTPError as exc:
                log.info(
                    "roster version %d not forwarded to %s: %s", roster.version, party.code, exc
                )

    def catch_up(self) -> None:
        """Apply the versions a peer holds beyond ours, in order."""
        self._roster_log.reload()  # another worker on this database may have applied one
        for party in self._peers():
            try:
                self._pull(party)
            except (httpx.HTTPError, CustodesError, ValueError) as exc:
                log.info("roster catch-up from %s failed: %s", party.code, exc)

    def _pull(self, party: Party) -> None:
        current = self._roster_log.federation.roster
        if current is None:
            return
        response = self._client.get(f"{party.url}{_PATH}")
        response.raise_for_status()
        theirs = int(response.json()["version"])
        for version in range(current.version + 1, theirs + 1):
            one = self._client.get(f"{party.url}{_PATH}", params={"version": version})
            one.raise_for_status()
            self._roster_log.apply(one.json()["document"])
