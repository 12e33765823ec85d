"""What the alliance overview shows: members, every log's size, age and finality, alerts.

Read from what the node already holds in memory or in small tables: the roster in force,
this node's newest checkpoint and its cosignatures, each peer mirror's verified state,
the split-view alerts and the gossip's open suspicions, and this node's agents counted
by status (one grouped read of an indexed column; never a count of the log, whose size
is the tree's).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from custodes.errors import CustodesError
from custodes.federation.lookup import Finality, finality
from custodes.ledger.note import parse_note
from custodes.registry.store import agents
from custodes.store.db import read_tx

if TYPE_CHECKING:
    from custodes.federation.lookup_service import AllianceLookups
    from custodes.federation.roster import SignedRoster
    from custodes.node import Node

__all__ = ["LogRow", "Overview", "overview_of", "status_counts"]


@dataclass(frozen=True)
class LogRow:
    """One log as this node sees it: its own, or a peer's through its mirror."""

    party: str
    source: str  # "this node" or "mirror"
    size: int
    age_s: float | None
    cosigners: tuple[str, ...]
    needed: int | None  # None: no roster in force, finality cannot be judged
    final: bool
    stale: bool
    alarm: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class Overview:
    alliance: str | None
    roster_version: int | None
    members: list[dict[str, Any]]
    logs: list[LogRow]
    alerts: list[dict[str, Any]]
    suspicions: list[dict[str, Any]]
    counts: dict[str, int]


_finals: dict[bytes, Finality] = {}
_finals_lock = threading.Lock()


def _finality(note: bytes, roster: SignedRoster | None) -> Finality | None:
    """The note's finality under ``roster`` (kept per note: verifying costs signatures)."""
    if roster is None:
        return None
    key = note + roster.digest().encode()
    found = _finals.get(key)
    if found is None:
        try:
            found = finality(parse_note(note), roster)
        except CustodesError:
            found = Finality((), 1)
        with _finals_lock:
            if len(_finals) > 256:
                _finals.clear()
            _finals[key] = found
    return found


def _row(party: str, source: str, size: int, note: bytes | None, roster: Any) -> dict[str, Any]:
    found = None if note is None else _finality(note, roster)
    return {
        "party": party,
        "source": source,
        "size": size,
        "cosigners": () if found is None else found.cosigners,
        "needed": None if found is None else found.needed,
        "final": found is not None and found.final,
    }


def _own_log(node: Node) -> LogRow:
    size, _ = node.store.tree_size()
    stored = node.store.checkpoint(size) if size else None
    note = None
    if stored is not None:
        note = stored.note + "".join(node.store.cosignature_lines(size)).encode()
    roster = node.federation.roster
    age = None if stored is None else max(0.0, time.time() - stored.created_at)
    base = _row(node.settings.jurisdiction, "this node", size, note, roster)
    return LogRow(**base, age_s=age, stale=False, alarm=None, error=None)


def _peer_logs(lookups: AllianceLookups | None, roster: SignedRoster | None) -> list[LogRow]:
    if lookups is None:
        return []
    rows = []
    for state in lookups.mirror_states():
        mirror = lookups.mirrors.get(state["party"])
        note = None if mirror is None else mirror.state.note
        base = _row(state["party"], "mirror", state["size"], note, roster)
        rows.append(
            LogRow(
                **base,
                age_s=state["age_s"],
                stale=bool(state["stale"]),
                alarm=state["alarm"],
                error=state["error"],
            )
        )
    return rows


def _members(roster: SignedRoster | None) -> list[dict[str, Any]]:
    if roster is None:
        return []
    return [
        {"code": p.code, "name": p.name, "status": p.status, "url": p.url if p.urls else None}
        for p in roster.body.parties
    ]


def status_counts(node: Node) -> dict[str, int]:
    """This node's agents by status (active, suspended, revoked)."""
    with read_tx(node.engine) as conn:
        rows = conn.execute(select(agents.c.status, func.count()).group_by(agents.c.status)).all()
    counts = {"active": 0, "suspended": 0, "revoked": 0}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def overview_of(node: Node, lookups: AllianceLookups | None, gossip: Any) -> Overview:
    """Everything the overview page shows, read once."""
    roster = node.federation.roster
    alerts = [a.to_json() for a in node.split_views.alerts()]
    suspicions = list(gossip.suspicions.values()) if gossip is not None else []
    return Overview(
        alliance=None if roster is None else roster.body.alliance,
        roster_version=None if roster is None else roster.version,
        members=_members(roster),
        logs=[_own_log(node), *_peer_logs(lookups, roster)],
        alerts=alerts,
        suspicions=suspicions,
        counts=status_counts(node),
    )
