"""Cross-border look-ups, checked offline: the answer's proof against the roster's keys.

A look-up answer (``GET /api/v1/alliance/agents/{id}``, any node) carries the agent's
record, the log index and leaf hash of the entry it comes from, that entry's inclusion
proof, the home log's checkpoint with its cosignatures, and the data's age.
``verify_lookup`` trusts none of it but the roster: the checkpoint must be signed by
the home's log key (as the roster names it), the proof must lead from the leaf to the
checkpoint's root, the entry (when given) must hash to the leaf and name the agent, and
finality counts the cosignatures of the roster's members. Pure: no I/O, so clients,
the demo and later the agentic-trade checks can use it as is.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

import orjson

from custodes.errors import BadRequest, NotFound
from custodes.federation.finality import cosigned_by, member_witnesses
from custodes.federation.roster import Party, SignedRoster, quorum_of
from custodes.ledger.checkpoint import Checkpoint, open_checkpoint
from custodes.ledger.errors import LedgerError
from custodes.ledger.merkle import leaf_hash, verify_inclusion
from custodes.ledger.note import Note, parse_vkey
from custodes.registry.models import AGENT_ID

__all__ = [
    "Finality",
    "LookupUnverified",
    "VerifiedLookup",
    "finality",
    "home_of",
    "home_party",
    "verify_lookup",
]

_AGENT = re.compile(AGENT_ID)


class LookupUnverified(BadRequest):
    """A look-up answer whose proof, checkpoint or entry does not verify."""

    code = "lookup_unverified"
    status = 502


def home_of(agent_id: str) -> str:
    """The home jurisdiction of ``urn:custodes:<jur>:agent:<slug>`` (upper case)."""
    if not _AGENT.match(agent_id):
        raise BadRequest(
            "an agent id reads urn:custodes:<jurisdiction>:agent:<slug>, e.g. "
            "urn:custodes:gb:agent:payments-bot",
            code="bad_agent_id",
            status=422,
            detail={"agent_id": agent_id[:200]},
        )
    return agent_id.split(":")[2].upper()


def home_party(roster: SignedRoster | None, agent_id: str) -> Party:
    """The roster party that is home to ``agent_id``; 404 outside the alliance."""
    home = home_of(agent_id)
    party = None if roster is None else roster.body.party(home)
    if party is None or not party.active:
        raise NotFound(
            f"{home} is not an active party of the alliance roster; look-ups answer for the "
            "agents of its members and partners only",
            code="unknown_jurisdiction",
            detail={"jurisdiction": home},
        )
    return party


@dataclass(frozen=True)
class Finality:
    """Which members cosigned a checkpoint, how many make a quorum, and so whether final."""

    cosigners: tuple[str, ...]
    needed: int

    @property
    def final(self) -> bool:
        return len(self.cosigners) >= self.needed


def finality(note: Note, roster: SignedRoster) -> Finality:
    """Members (codes) whose witness cosigned ``note``; final at a quorum of members
    (the rule of ``custodes.federation.finality``, over a note already opened)."""
    witnesses = member_witnesses(roster)
    codes = tuple(sorted(c for c, v in witnesses.items() if cosigned_by(note, v)))
    return Finality(codes, quorum_of(len(witnesses)) if witnesses else 1)


@dataclass(frozen=True)
class VerifiedLookup:
    """A look-up answer that verified: what it proves, against which checkpoint."""

    agent_id: str
    home: str
    status: str
    suspended_in: tuple[str, ...]
    entry_index: int
    checkpoint: Checkpoint
    finality: Finality
    age_s: float
    stale: bool
    answer: dict[str, Any]


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LookupUnverified(f"the answer's {what} is not base64") from exc


def _check_entry(answer: dict[str, Any], leaf: bytes) -> None:
    entry = answer.get("entry")
    if entry is None:
        return
    data = _b64(entry, "entry")
    if leaf_hash(data) != leaf:
        raise LookupUnverified("the answer's entry does not hash to its leaf")
    if answer["agent_id"].encode() not in base64.b64decode(_payload(data)):
        raise LookupUnverified("the answer's entry does not name the agent")


def _payload(data: bytes) -> bytes:
    try:
        return str(orjson.loads(data)["payload"]).encode()
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise LookupUnverified("the answer's entry is not a DSSE envelope") from exc


def _open(answer: dict[str, Any], party: Party) -> tuple[Checkpoint, Note]:
    try:
        checkpoint, note, _ = open_checkpoint(
            str(answer["checkpoint"]).encode(), [parse_vkey(party.log_vkey)]
        )
    except (LedgerError, KeyError) as exc:
        raise LookupUnverified(
            f"the answer's checkpoint is not signed by {party.code}'s log key in the roster"
        ) from exc
    if checkpoint.origin != party.origin:
        raise LookupUnverified(f"the answer's checkpoint is not {party.code}'s log")
    return checkpoint, note


def verify_lookup(answer: dict[str, Any], roster: SignedRoster) -> VerifiedLookup:
    """Verify a look-up answer against ``roster``; raise LookupUnverified if it fails."""
    party = home_party(roster, str(answer.get("agent_id", "")))
    checkpoint, note = _open(answer, party)
    proof = answer.get("proof") or {}
    leaf = _b64(answer.get("leaf_hash"), "leaf hash")
    index, size = int(answer["entry_index"]), int(proof.get("tree_size", -1))
    if size != checkpoint.size or int(proof.get("index", -1)) != index:
        raise LookupUnverified("the answer's proof is not for its entry at its checkpoint")
    try:
        hashes = [_b64(h, "proof") for h in proof.get("proof", [])]
        verify_inclusion(leaf, index, size, hashes, checkpoint.root_hash)
    except LedgerError as exc:
        raise LookupUnverified("the answer's inclusion proof does not verify") from exc
    _check_entry(answer, leaf)
    return VerifiedLookup(
        agent_id=answer["agent_id"],
        home=party.code,
        status=str(answer.get("status")),
        suspended_in=tuple(answer.get("suspended_in") or ()),
        entry_index=index,
        checkpoint=checkpoint,
        finality=finality(note, roster),
        age_s=float(answer.get("age_s") or 0.0),
        stale=bool(answer.get("stale")),
        answer=answer,
    )
