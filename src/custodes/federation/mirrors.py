"""Mirrors: one follower thread per active peer of the roster, reconfigured on change.

Each follower reads its peer's checkpoint every ``interval`` seconds (on the leading
worker only; the others read the mirrors the leader writes), verifies it and mirrors up
to it (``PeerMirror.advance``). A peer that cannot be reached or serves a checkpoint that
does not verify is tried again next round; the mirror's age grows meanwhile. A peer that
rewrote its history is halted for good: its mirror keeps the verified state and the
evidence, and the alarm is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from custodes.errors import CustodesError
from custodes.federation.mirror import MirrorDiverged, PeerMirror
from custodes.federation.roster import Party, SignedRoster
from custodes.federation.state import Federation
from custodes.federation.tlog_client import TlogClient
from custodes.ledger.note import NoteVerifier, parse_vkey

__all__ = ["Mirrors"]

log = logging.getLogger("custodes.federation.mirror")


def member_witnesses(federation: Federation, but: str) -> list[NoteVerifier]:
    """The witness keys of the roster's members, except the log's own party."""
    return [parse_vkey(p.witness_vkey) for p in federation.members() if p.code != but]


class _Follower:
    """One peer's follower thread around its mirror."""

    def __init__(self, mirror: PeerMirror, owner: Mirrors) -> None:
        self.mirror, self.owner = mirror, owner
        self.party = mirror.party
        self.stop = threading.Event()
        self.client = TlogClient(self.party.url, concurrency=4, timeout=owner.timeout)
        self.thread = threading.Thread(
            target=self._run, name=f"mirror-{self.party.code}", daemon=True
        )
        self.error: str | None = None

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.owner.is_leader():
                self.step()
            else:
                self.mirror.refresh()
            self.stop.wait(self.owner.interval)

    def step(self) -> None:
        if self.mirror.state.alarm is not None:
            return
        try:
            note = self.client.checkpoint()
            witnesses = member_witnesses(self.owner.federation, self.party.code)
            self.mirror.advance(note, self.client.fetch_many, witnesses)
            self.error = None
        except MirrorDiverged as exc:
            log.error("ALARM: %s (%s)", exc.message, exc.detail)
        except CustodesError as exc:
            if self.error != exc.message:
                log.warning("mirror of %s: %s; retrying", self.party.code, exc.message)
            self.error = exc.message

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.client.close()
        self.mirror.close()


class Mirrors:
    """Every peer's mirror on this node, followed while ``start``ed."""

    def __init__(
        self,
        federation: Federation,
        directory: Path,
        *,
        is_leader: Callable[[], bool],
        interval: float = 0.5,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.federation, self.directory = federation, directory
        self.is_leader, self.interval, self.timeout, self.clock = (
            is_leader,
            interval,
            timeout,
            clock,
        )
        self._followers: dict[str, _Follower] = {}
        self._lock = threading.Lock()
        self._running = False

    def start(self) -> None:
        self._running = True
        self.federation.on_change(self._reconfigure)

    def stop(self) -> None:
        with self._lock:
            self._running = False
            followers, self._followers = list(self._followers.values()), {}
        for follower in followers:
            follower.close()

    def get(self, code: str) -> PeerMirror | None:
        follower = self._followers.get(code)
        return None if follower is None else follower.mirror

    def codes(self) -> list[str]:
        return sorted(self._followers)

    def error(self, code: str) -> str | None:
        follower = self._followers.get(code)
        return None if follower is None else follower.error

    def _reconfigure(self, roster: SignedRoster) -> None:
        wanted = {p.code: p for p in roster.body.parties if p.active}
        wanted.pop(self.federation.jurisdiction, None)
        with self._lock:
            if not self._running:
                return
            gone = [f for c, f in self._followers.items() if wanted.get(c) != f.party]
            for follower in gone:
                del self._followers[follower.party.code]
            for code, party in wanted.items():
                if code not in self._followers:
                    self._followers[code] = self._follow(party)
        for follower in gone:
            follower.close()

    def _follow(self, party: Party) -> _Follower:
        mirror = PeerMirror(party, self.directory / f"{party.code}.db", self.clock)
        follower = _Follower(mirror, self)
        follower.thread.start()
        return follower
