"""An agent's recognitions across the alliance, checked offline against the roster.

The answer of ``GET /api/v1/alliance/agents/{id}/recognitions`` (any node) carries, for
the agent's current model and card digests, every active party's latest decision on
each of its attestations: the decision's entry as logged, its index and leaf hash, its
inclusion proof, and per party the checkpoint it is proven under (from the answering
node's own log or its mirror of that party) with the data's age. ``verify_recognitions``
trusts none of it but the roster, as ``verify_lookup`` does: each checkpoint must be
signed by its party's log key, each proof must lead from the leaf to that checkpoint's
root, each entry must hash to its leaf and be a recognition decision signed by one of
the party's regulators (or its node, for an automatic one) naming this agent and that
party. Which decision is in force is then recomputed here, not taken from the answer.

What it cannot prove: that no later decision exists beyond the checkpoint shown (a
withdrawal logged after it). ``age_s`` and ``stale`` bound that, as for look-ups.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from custodes.audits.models import RECOGNITION_TYPE, RecognitionDecision
from custodes.errors import CustodesError
from custodes.federation.lookup import (
    Finality,
    LookupUnverified,
    _b64,
    _open,
    finality,
    home_party,
)
from custodes.federation.roster import Party, SignedRoster
from custodes.ledger.checkpoint import Checkpoint
from custodes.ledger.dsse import key_thumbprint, parse_envelope, verify_envelope
from custodes.ledger.errors import LedgerError
from custodes.ledger.merkle import leaf_hash, verify_inclusion

__all__ = [
    "PartyView",
    "VerifiedDecision",
    "VerifiedRecognitions",
    "verify_recognitions",
]


@dataclass(frozen=True)
class PartyView:
    """One party's checkpoint as the answer proves its decisions under it."""

    code: str
    source: str
    checkpoint: Checkpoint
    finality: Finality
    age_s: float
    stale: bool


@dataclass(frozen=True)
class VerifiedDecision:
    """A recognition decision proven in its party's log: where, and what it says."""

    party: str
    index: int
    leaf_hash: str  # lowercase hex
    record: RecognitionDecision

    def current(self, model_digest: str | None, card_digest: str | None) -> bool:
        """Whether it is about the agent with exactly these digests."""
        return (self.record.model_digest, self.record.card_digest) == (model_digest, card_digest)


@dataclass(frozen=True)
class VerifiedRecognitions:
    """A recognitions answer that verified, and what it proves."""

    agent_id: str
    home: str
    model_digest: str | None
    card_digest: str | None
    parties: dict[str, PartyView]
    decisions: tuple[VerifiedDecision, ...]

    def of(self, jurisdiction: str, sector: str) -> list[VerifiedDecision]:
        """``jurisdiction``'s decisions for ``sector`` on the agent's current digests."""
        return [
            d
            for d in self.decisions
            if d.party == jurisdiction
            and d.record.sector == sector
            and d.current(self.model_digest, self.card_digest)
        ]

    def in_force(self, jurisdiction: str, sector: str, now: float) -> VerifiedDecision | None:
        """The recognition in force in ``jurisdiction`` for ``sector`` at ``now``, if any."""
        live = [
            d
            for d in self.of(jurisdiction, sector)
            if d.record.op == "recognise"
            and d.record.valid_until is not None
            and d.record.valid_until.timestamp() > now
        ]
        return max(live, key=lambda d: _until(d.record), default=None)

    def stale(self, jurisdiction: str) -> bool:
        """Whether ``jurisdiction``'s data is past the answering node's bound (or absent)."""
        view = self.parties.get(jurisdiction)
        return view is None or view.stale


def _until(record: RecognitionDecision) -> datetime:
    return record.valid_until or datetime.min.replace(tzinfo=UTC)


def _party(roster: SignedRoster, code: str) -> Party:
    party = roster.body.party(code)
    if party is None or not party.active:
        raise LookupUnverified(f"the answer names {code}, which is not an active party")
    return party


def _views(answer: dict[str, Any], roster: SignedRoster) -> dict[str, PartyView]:
    views: dict[str, PartyView] = {}
    for code, seen in dict(answer.get("parties") or {}).items():
        checkpoint, note = _open(seen, _party(roster, str(code)))
        views[str(code)] = PartyView(
            code=str(code),
            source=str(seen.get("source")),
            checkpoint=checkpoint,
            finality=finality(note, roster),
            age_s=float(seen.get("age_s") or 0.0),
            stale=bool(seen.get("stale")),
        )
    return views


def _signers(party: Party) -> dict[str, bytes]:
    """The keys that may sign ``party``'s decisions: its regulators and its node."""
    keys = [base64.b64decode(r.public_key) for r in party.regulators]
    keys.append(party.entry_public_key())
    return {key_thumbprint(k): k for k in keys}


def _record(data: bytes, party: Party, agent_id: str) -> RecognitionDecision:
    try:
        envelope = parse_envelope(_json(data))
        if envelope.payload_type != RECOGNITION_TYPE:
            raise LookupUnverified("an answer's entry is not a recognition decision")
        keys = _signers(party)
        verify_envelope(envelope, keys.get)
        record = RecognitionDecision.model_validate_json(envelope.payload)
    except (LedgerError, ValidationError) as exc:
        raise LookupUnverified(
            f"a decision in the answer is not a recognition signed by {party.code}'s "
            "regulators or node"
        ) from exc
    if record.jurisdiction != party.code or record.agent_id != agent_id:
        raise LookupUnverified(f"a decision in the answer is not {party.code}'s on {agent_id}")
    return record


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise LookupUnverified("an answer's entry is not JSON") from exc


def _decision(
    item: dict[str, Any], views: dict[str, PartyView], roster: SignedRoster, agent_id: str
) -> VerifiedDecision:
    code = str(item.get("party"))
    view = views.get(code)
    if view is None:
        raise LookupUnverified(f"a decision of {code} comes without {code}'s checkpoint")
    leaf = _b64(item.get("leaf_hash"), "leaf hash")
    index = int(item.get("entry_index", -1))
    proof = item.get("proof") or {}
    size = view.checkpoint.size
    if int(proof.get("tree_size", -1)) != size or int(proof.get("index", -2)) != index:
        raise LookupUnverified(f"a proof of {code} is not for its entry at {code}'s checkpoint")
    try:
        hashes = [_b64(h, "proof") for h in proof.get("proof", [])]
        verify_inclusion(leaf, index, size, hashes, view.checkpoint.root_hash)
    except LedgerError as exc:
        raise LookupUnverified(f"an inclusion proof of {code} does not verify") from exc
    data = _b64(item.get("entry"), "entry")
    if leaf_hash(data) != leaf:
        raise LookupUnverified(f"a decision entry of {code} does not hash to its leaf")
    record = _record(data, _party(roster, code), agent_id)
    return VerifiedDecision(code, index, leaf.hex(), record)


def verify_recognitions(answer: dict[str, Any], roster: SignedRoster) -> VerifiedRecognitions:
    """Verify a recognitions answer against ``roster``; raise LookupUnverified if any
    part of it fails (a malformed answer fails the same way)."""
    try:
        agent_id = str(answer.get("agent_id", ""))
        home = home_party(roster, agent_id).code
        views = _views(answer, roster)
        items = answer.get("decisions") or []
        decisions = tuple(_decision(dict(i), views, roster, agent_id) for i in items)
        digests = dict(answer.get("digests") or {})
    except (TypeError, ValueError, AttributeError) as exc:
        raise LookupUnverified("the recognitions answer is malformed") from exc
    except LookupUnverified:
        raise
    except CustodesError as exc:
        raise LookupUnverified(f"the recognitions answer is malformed: {exc.message}") from exc
    return VerifiedRecognitions(
        agent_id=agent_id,
        home=home,
        model_digest=digests.get("model"),
        card_digest=digests.get("card"),
        parties=views,
        decisions=decisions,
    )
