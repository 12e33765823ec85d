"""Answering ``GET /api/v1/alliance/agents/{id}/recognitions`` on this node.

For the agent's current model and card digests (from its home's registry: ours or our
mirror of the home), every active party's latest decision on each of the agent's
attestations, read where it is projected (our database for our own decisions, the
party's mirror for the others'), each with its entry as logged, its inclusion proof and,
once per party, the checkpoint it is proven under with its age. A party this node holds
no mirror of yet is listed in ``unavailable``; a mirror past the look-up bound (or halted
on an alarm) says ``stale``. ``verify_recognitions`` checks the answer offline.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from custodes.audits.store import recognitions_of
from custodes.errors import NotFound
from custodes.federation.lookup import home_party
from custodes.federation.recognitions import AllianceRecognitions
from custodes.store.db import read_tx

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from custodes.federation.lookup_service import AllianceLookups
    from custodes.federation.mirror import PeerMirror
    from custodes.node import Node

__all__ = ["RecognitionAnswers", "recognitions_answer"]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _proof(index: int, size: int, hashes: list[bytes]) -> dict[str, Any]:
    return {"index": index, "tree_size": size, "proof": [_b64(h) for h in hashes]}


def _item(code: str, row: dict[str, Any], entry: bytes, proof: dict[str, Any]) -> dict[str, Any]:
    return {
        "party": code,
        "attestation": row["attestation"],
        "status": row["status"],
        "sector": row["sector"],
        "entry_index": row["entry_index"],
        "leaf_hash": _b64(bytes.fromhex(row["leaf_hash"])),
        "entry": _b64(entry),
        "proof": proof,
    }


def _own(
    lookups: AllianceLookups, agent_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    node = lookups.node
    code = node.federation.jurisdiction
    size, _ = node.store.tree_size()
    stored = node.store.checkpoint(size)
    if stored is None:
        return None
    with read_tx(node.engine) as conn:
        rows = [r for r in recognitions_of(conn, agent_id) if r["jurisdiction"] == code]
        rows = [r for r in rows if r["entry_index"] < size]  # not yet integrated: not shown
        entries = {r["entry_index"]: _entry(node, conn, r["entry_index"]) for r in rows}
    items = []
    for row in rows:
        index = row["entry_index"]
        hashes = node.record_proofs.inclusion(index, size)["proof"]
        items.append(_item(code, row, entries[index], _proof(index, size, hashes)))
    note = stored.note + "".join(node.store.cosignature_lines(size)).encode()
    view = {"source": "self", "checkpoint": note.decode(), "age_s": 0.0, "stale": False}
    return view, items


def _entry(node: Node, conn: Connection, index: int) -> bytes:
    return node.store.entry_data(conn, index, index + 1)[0]


def _mirrored(
    lookups: AllianceLookups, mirror: PeerMirror, agent_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    code = mirror.party.code
    state = mirror.state
    with read_tx(mirror.engine) as conn:
        rows = [r for r in recognitions_of(conn, agent_id) if r["jurisdiction"] == code]
    if any(r["entry_index"] >= state.size for r in rows):  # replayed past the state read
        state = mirror.refresh()
    items = []
    for row in rows:
        index, entry = row["entry_index"], mirror.entry(row["entry_index"])
        if entry is None or index >= state.size:
            continue
        items.append(
            _item(code, row, entry, _proof(index, state.size, mirror.inclusion(index, state.size)))
        )
    age = state.age(lookups.clock())
    view: dict[str, Any] = {
        "source": "mirror",
        "checkpoint": (state.note or b"").decode(),
        "age_s": None if age is None else round(age, 3),
        "stale": age is None or age > lookups.bound or state.alarm is not None,
    }
    if state.alarm is not None:
        view["alarm"] = state.alarm
    return view, items


def _in_force(
    recognitions: AllianceRecognitions,
    agent_id: str,
    codes: list[str],
    digests: tuple[str | None, str | None],
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for code in codes:
        live = recognitions.in_force(
            agent_id, code, model_digest=digests[0], card_digest=digests[1]
        )
        found[code] = (
            None
            if live is None
            else {
                "attestation": live.attestation,
                "sector": live.sector,
                "valid_until": live.valid_until,
                "entry_index": live.entry_index,
            }
        )
    return found


def _party_part(
    lookups: AllianceLookups, code: str, agent_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """``code``'s checkpoint view and decisions, or None when this node has none yet."""
    if code == lookups.node.federation.jurisdiction:
        return _own(lookups, agent_id)
    mirror = lookups.mirrors.get(code)
    if mirror is None or mirror.state.note is None:
        return None
    return _mirrored(lookups, mirror, agent_id)


def _unmirrored(lookups: AllianceLookups, code: str) -> bool:
    mirror = lookups.mirrors.get(code)
    return mirror is None or mirror.state.note is None


def recognitions_answer(
    lookups: AllianceLookups, recognitions: AllianceRecognitions, agent_id: str
) -> dict[str, Any]:
    """The answer for ``agent_id`` (404/422 as look-ups: unknown home, malformed id)."""
    federation = lookups.node.federation
    home = home_party(federation.roster, agent_id).code
    if home != federation.jurisdiction and _unmirrored(lookups, home):
        raise NotFound(
            f"this node holds no verified mirror of {home}'s registry yet; try again shortly",
            code="mirror_unavailable",
        )
    digests = recognitions.digests(agent_id)
    roster = federation.roster
    codes = (
        [p.code for p in roster.body.parties if p.active] if roster else [federation.jurisdiction]
    )
    parties: dict[str, Any] = {}
    decisions: list[dict[str, Any]] = []
    unavailable: list[str] = []
    for code in codes:
        found = _party_part(lookups, code, agent_id)
        if found is None:
            unavailable.append(code)
            continue
        view, items = found
        parties[code] = view | {"bound_s": lookups.bound}
        decisions.extend(items)
    return {
        "agent_id": agent_id,
        "home": home,
        "digests": {"model": digests[0], "card": digests[1]},
        "parties": parties,
        "decisions": decisions,
        "in_force": _in_force(recognitions, agent_id, list(parties), digests),
        "unavailable": unavailable,
    }


_CACHED = 4096


class RecognitionAnswers:
    """``recognitions_answer`` kept per (agent, each party's checkpoint as read here): an
    answer is rebuilt only once a log it rests on has grown. Ages, staleness and
    expiries are stamped afresh on every answer."""

    def __init__(self, lookups: AllianceLookups, recognitions: AllianceRecognitions) -> None:
        self.lookups, self.recognitions = lookups, recognitions
        self._answers: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def answer(self, agent_id: str) -> dict[str, Any]:
        key = (agent_id, *self._heads())
        with self._lock:
            base = self._answers.get(key)
        if base is None:
            base = recognitions_answer(self.lookups, self.recognitions, agent_id)
            with self._lock:
                self._answers[key] = base
                if len(self._answers) > _CACHED:
                    self._answers.popitem(last=False)
        return self._stamped(base)

    def _heads(self) -> list[Any]:
        """Our tree size and each mirror's checkpoint note: what an answer rests on."""
        heads: list[Any] = [self.lookups.node.store.tree_size()[0]]
        for code in self.lookups.mirrors.codes():
            mirror = self.lookups.mirrors.get(code)
            heads.append((code, None if mirror is None else mirror.state.note))
        return heads

    def _stamped(self, base: dict[str, Any]) -> dict[str, Any]:
        now = self.lookups.clock()
        parties = {code: self._aged(code, view, now) for code, view in base["parties"].items()}
        in_force = {
            code: None if live is None or live["valid_until"] <= now else live
            for code, live in base["in_force"].items()
        }
        return {**base, "parties": parties, "in_force": in_force}

    def _aged(self, code: str, view: dict[str, Any], now: float) -> dict[str, Any]:
        mirror = None if view["source"] == "self" else self.lookups.mirrors.get(code)
        if mirror is None:
            return view
        state = mirror.state
        age = state.age(now)
        return {
            **view,
            "age_s": None if age is None else round(age, 3),
            "stale": age is None or age > self.lookups.bound or state.alarm is not None,
        }
