"""Decision records: signed by the agent's own key, appended to its home node's log
(``custodes.client.Client.append``; ``DecisionRecorder`` spools and delivers them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.payloads import DECISION_TYPE, DecisionRecord

__all__ = ["sign_decision"]


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
) -> Envelope:
    """A DSSE envelope holding a version-1 decision record, signed by the agent."""
    record = DecisionRecord(
        agent=agent,
        action=action,
        rationale=rationale,
        counterparties=list(counterparties),
        jurisdiction=jurisdiction,
        decided_at=decided_at or datetime.now(UTC),
        idempotency_key=idempotency_key,
    )
    payload = record.model_dump_json(exclude_none=True).encode()
    return sign_envelope(DECISION_TYPE, payload, [signer])
