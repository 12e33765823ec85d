"""A trade between agents of two jurisdictions, recorded on both sides, cross-referenced.

The protocol (docs/design/0028)::

    A checks B (Counterparty)   A logs its offer                    -> A's log, entry a
    B checks A                  B logs its acceptance, refs=[a]     -> B's log, entry b
    A (re)checks B              A logs its confirmation, refs=[b]   -> A's log, entry c

Each decision names the other's entry by origin, index and leaf hash (``EntryRef``,
public metadata even in a committed record), so the two logs can be stitched together
later from their public entries alone: ``stitch`` pairs each reference with the entry
it names and says whether that entry is there with exactly that leaf hash.
``linked_entry`` reads one logged decision (as ``GET /api/v1/entries/{i}`` serves it)
into what ``stitch`` takes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from custodes.errors import BadRequest
from custodes.ledger.commitments import OpenedEntry
from custodes.ledger.dsse import Envelope, EnvelopeSigner, parse_envelope
from custodes.ledger.errors import LedgerError
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.payloads import DECISION_TYPE, EntryRef
from custodes.sdk.counterparty import Counterparty, Verdict
from custodes.sdk.decisions import sign_committed_decision, sign_decision

__all__ = [
    "ACCEPT",
    "CONFIRM",
    "OFFER",
    "Link",
    "LinkedEntry",
    "LoggedDecision",
    "TradeDesk",
    "linked_entry",
    "stitch",
]

OFFER, ACCEPT, CONFIRM = "trade_offer", "trade_accept", "trade_confirm"


class Appender(Protocol):
    """The agent's home node: ``custodes.client.Client``."""

    def append(self, envelopes: Sequence[Envelope | OpenedEntry]) -> list[int]: ...


@dataclass(frozen=True)
class LoggedDecision:
    """One side's logged trade decision: where it is (``ref``) and what it names."""

    ref: EntryRef
    action: str
    counterparty: str
    refs: tuple[EntryRef, ...]
    verdict: Verdict


class TradeDesk:
    """One agent's side of trades: each step checks the counterparty, then logs the
    decision at the agent's home node (synchronously: the other side needs its index)."""

    def __init__(
        self,
        client: Appender,
        signer: EnvelopeSigner,
        counterparty: Counterparty,
        *,
        committed: bool = True,
    ) -> None:
        self.client, self.signer, self.counterparty = client, signer, counterparty
        self.agent_id = counterparty.me
        home = counterparty.roster.body.party(counterparty.jurisdiction)
        if home is None:
            raise BadRequest(f"{counterparty.jurisdiction} is not a party of the roster")
        self.origin = home.origin
        self.committed = committed

    def offer(self, other: str, lease: Any, sector: str, terms: str) -> LoggedDecision:
        """Check ``other`` and log the offer (no refs: it opens the trade)."""
        return self._step(OFFER, other, lease, sector, terms, ())

    def accept(
        self, offer: EntryRef, other: str, lease: Any, sector: str, terms: str
    ) -> LoggedDecision:
        """Check the offering agent and log the acceptance naming its offer."""
        return self._step(ACCEPT, other, lease, sector, terms, (offer,))

    def confirm(
        self, acceptance: EntryRef, other: str, lease: Any, sector: str, terms: str
    ) -> LoggedDecision:
        """Check again (cached within half its lease) and log the confirmation naming the
        acceptance."""
        return self._step(CONFIRM, other, lease, sector, terms, (acceptance,))

    def _step(  # noqa: PLR0917 - the trade step's fields, as the three steps pass them
        self,
        action: str,
        other: str,
        lease: Any,
        sector: str,
        terms: str,
        refs: tuple[EntryRef, ...],
    ) -> LoggedDecision:
        verdict = self.counterparty.require(other, lease, sector)
        sign = sign_committed_decision if self.committed else sign_decision
        item = sign(
            self.signer,
            self.agent_id,
            action,
            terms,
            [other],
            jurisdiction=self.counterparty.jurisdiction,
            idempotency_key=uuid.uuid4().hex,
            refs=refs,
        )
        envelope = item.envelope if isinstance(item, OpenedEntry) else item
        index = self.client.append([item])[0]
        ref = EntryRef(
            origin=self.origin, index=index, leaf_hash=leaf_hash(envelope.to_bytes()).hex()
        )
        return LoggedDecision(ref, action, other, refs, verdict)


# -- stitching ------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkedEntry:
    """A logged decision as stitching sees it: where it is, whose, and what it names."""

    ref: EntryRef
    agent: str
    action: str  # the clear action (version 1) or the public kind (version 2)
    refs: tuple[EntryRef, ...]


@dataclass(frozen=True)
class Link:
    """A reference from one entry to another; ``found`` when the entry it names is among
    those stitched, at that origin and index, with exactly that leaf hash."""

    source: EntryRef
    target: EntryRef
    found: bool


def linked_entry(origin: str, index: int, entry: bytes | dict[str, Any]) -> LinkedEntry:
    """A decision entry (its bytes as logged, or its JSON as ``GET /api/v1/entries/{i}``
    serves it) read for stitching; its leaf hash is computed here from the canonical
    entry bytes, not taken from anyone."""
    try:
        envelope = parse_envelope(entry if isinstance(entry, dict) else orjson.loads(entry))
        record = orjson.loads(envelope.payload)
    except (orjson.JSONDecodeError, LedgerError) as exc:
        raise BadRequest(f"entry {index} of {origin} is not a DSSE envelope") from exc
    if envelope.payload_type != DECISION_TYPE or not isinstance(record, dict):
        raise BadRequest(f"entry {index} of {origin} is not a decision")
    refs = tuple(EntryRef.model_validate(r) for r in record.get("refs") or ())
    ref = EntryRef(origin=origin, index=index, leaf_hash=leaf_hash(envelope.to_bytes()).hex())
    action = str(record.get("action") or record.get("kind"))
    return LinkedEntry(ref, str(record.get("agent")), action, refs)


def stitch(*logs: Iterable[LinkedEntry]) -> list[Link]:
    """Every reference among the entries of ``logs``, each resolved against them."""
    entries = [e for log in logs for e in log]
    known = {(e.ref.origin, e.ref.index): e.ref.leaf_hash for e in entries}
    return [
        Link(e.ref, target, known.get((target.origin, target.index)) == target.leaf_hash)
        for e in entries
        for target in e.refs
    ]
