"""Decision records: signed by the agent's own key, appended to its home node's log
(``custodes.client.Client.append``; ``DecisionRecorder`` spools and delivers them).

``sign_committed_decision`` writes what the public log should hold: a version-2 record
(public metadata and a salted commitment) with the opening that travels beside it and
stays at the home node. ``sign_decision`` writes a plain version-1 record, whose clear
text is public; it stays for tools and tests that need one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from custodes.ledger.commitments import OpenedEntry, seal_decision
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.payloads import DECISION_TYPE, DecisionRecord, EntryRef

__all__ = ["sign_committed_decision", "sign_decision", "sign_record"]


def sign_decision(
    signer: EnvelopeSigner,
    agent: str,
    action: str,
    rationale: str,
    counterparties: Sequence[str] = (),
    *,
    jurisdiction: str | None = None,
    decided_at: datetime | None = None,
    idempotency_key: str | None = None,
    refs: Sequence[EntryRef] = (),
) -> Envelope:
    """A DSSE envelope holding a plain version-1 decision record, signed by the agent
    (``refs``: the other logs' entries it answers, e.g. a trade's offer)."""
    record = _record(
        agent, action, rationale, counterparties, jurisdiction, decided_at, idempotency_key, refs
    )
    payload = record.model_dump_json(exclude_none=True).encode()
    return sign_envelope(DECISION_TYPE, payload, [signer])


def sign_committed_decision(
    signer: EnvelopeSigner,
    agent: str,
    action: str,
    rationale: str,
    counterparties: Sequence[str] = (),
    *,
    jurisdiction: str | None = None,
    decided_at: datetime | None = None,
    idempotency_key: str | None = None,
    refs: Sequence[EntryRef] = (),
) -> OpenedEntry:
    """A version-2 decision (metadata and commitment) signed by the agent, with the
    opening (salt and clear record) to send beside it; ``refs`` are public metadata."""
    record = _record(
        agent, action, rationale, counterparties, jurisdiction, decided_at, idempotency_key, refs
    )
    return sign_record(signer, record)


def _record(  # noqa: PLR0917 - the fields of a decision, as both signers take them
    agent: str,
    action: str,
    rationale: str,
    counterparties: Sequence[str],
    jurisdiction: str | None,
    decided_at: datetime | None,
    idempotency_key: str | None,
    refs: Sequence[EntryRef] = (),
) -> DecisionRecord:
    return DecisionRecord(
        agent=agent,
        action=action,
        rationale=rationale,
        counterparties=list(counterparties),
        jurisdiction=jurisdiction,
        decided_at=decided_at or datetime.now(UTC),
        idempotency_key=idempotency_key,
        refs=tuple(refs) or None,  # no refs: not written at all (the record as before)
    )


def sign_record(signer: EnvelopeSigner, record: DecisionRecord) -> OpenedEntry:
    """``record`` committed to (version 2) and signed, with its opening."""
    committed, opening = seal_decision(record)
    payload = committed.model_dump_json(exclude_none=True).encode()
    return OpenedEntry(sign_envelope(DECISION_TYPE, payload, [signer]), opening)
