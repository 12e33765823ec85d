"""The payload types a node accepts in its log, each a versioned JSON record.

``payloadType`` names the kind of entry. The payload inside the envelope is JSON (not
necessarily canonical: it is signed as bytes by DSSE) and must validate against the
model for its type. Unknown types are refused: a log that stores what nobody can read
is not an audit trail.

Decision records come in two versions under one payload type (DESIGN.md 4.1): version 1
holds the clear record; version 2 (``CommittedDecision``) holds only public metadata and
a salted commitment to the clear record, which travels beside the envelope and stays at
home (``custodes.ledger.commitments``). Access and erasure entries are issued by the node
and by a home regulator; clients cannot append them through ``/api/v1/entries``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custodes.ledger.errors import EnvelopeError

__all__ = [
    "ACCESS_TYPE",
    "COMMITMENT_PATTERN",
    "DECISION_TYPE",
    "ERASURE_TYPE",
    "SIGNER_TYPE",
    "AccessRecord",
    "CommittedDecision",
    "DecisionRecord",
    "EntryRef",
    "ErasureRecord",
    "SignerRecord",
    "decision_kind",
    "validate_payload",
]

DECISION_TYPE = "application/vnd.custodes.decision+json"
SIGNER_TYPE = "application/vnd.custodes.signer+json"
ACCESS_TYPE = "application/vnd.custodes.access+json"
ERASURE_TYPE = "application/vnd.custodes.erasure+json"
COMMITMENT_PATTERN = r"^sha256:[0-9a-f]{64}$"
MAX_REFS = 16


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=16_384)


# Left out of every dump when absent (not ``null``): a record without refs serialises,
# and so is signed, hashed and committed to, exactly as before refs existed.
_REFS: Any = Field(
    default=None, min_length=1, max_length=MAX_REFS, exclude_if=lambda refs: refs is None
)


class EntryRef(_Record):
    """Another log's entry a decision answers: its origin, index and RFC 6962 leaf hash
    (lowercase hex), so two logs can be stitched together later (the two sides of a
    trade name each other's entries; docs/design/0028)."""

    origin: str = Field(min_length=1, max_length=256)
    index: int = Field(ge=0)
    leaf_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class DecisionRecord(_Record):
    """An agent's decision and the reasons for it (the "Black Box" record), version 1.

    ``refs`` (optional) names the entries of other logs the decision answers; a record
    without refs is written, signed and committed to exactly as before they existed.
    """

    v: Literal[1] = 1
    agent: str = Field(min_length=1, max_length=256)
    action: str = Field(min_length=1, max_length=1024)
    rationale: str = Field(min_length=1)
    counterparties: list[str] = Field(default_factory=list, max_length=64)
    jurisdiction: str | None = Field(default=None, min_length=2, max_length=8)
    inputs_digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    decided_at: datetime
    idempotency_key: str | None = Field(default=None, max_length=128)
    refs: tuple[EntryRef, ...] | None = _REFS


class CommittedDecision(_Record):
    """A decision as the public log holds it, version 2: public metadata and a salted
    commitment to the clear record (a version-1 ``DecisionRecord``), which stays home.

    The idempotency key is public because the log deduplicates retries by (agent, key)
    in the sequencing transaction, before any clear text is at hand; it is random (a
    UUID) and says nothing about the decision. ``refs`` is public too: a link between
    two log entries reveals no content, and stitching two logs together later must not
    need the clear text; it equals the clear record's refs.
    """

    v: Literal[2]
    agent: str = Field(min_length=1, max_length=256)
    kind: Literal["decision", "halt"]
    decided_at: datetime
    idempotency_key: str | None = Field(default=None, max_length=128)
    commitment: str = Field(pattern=COMMITMENT_PATTERN)
    refs: tuple[EntryRef, ...] | None = _REFS


def decision_kind(record: DecisionRecord | CommittedDecision) -> str:
    """``halt`` for a halt record, ``decision`` otherwise, whatever the version."""
    if isinstance(record, CommittedDecision):
        return record.kind
    return "halt" if record.action == "halt" else "decision"


class AccessRecord(_Record):
    """The node's record that a principal was shown clear decision records, version 1."""

    v: Literal[1] = 1
    reader: str = Field(min_length=1, max_length=256)
    indices: list[int] = Field(min_length=1, max_length=1000)
    read_at: datetime


class ErasureRecord(_Record):
    """A home regulator's erasure of a decision's clear text on a legal request, version 1."""

    v: Literal[1] = 1
    index: int = Field(ge=0)
    commitment: str = Field(pattern=COMMITMENT_PATTERN)
    legal_basis: str = Field(min_length=1, max_length=1024)
    actor: str = Field(min_length=1, max_length=256)


class SignerRecord(_Record):
    """The node registering (or retiring) a key allowed to sign entries, version 1."""

    v: Literal[1] = 1
    name: str = Field(min_length=1, max_length=256)
    keyid: str = Field(pattern=r"^[0-9a-f]{64}$")
    public_key: str = Field(min_length=44, max_length=44)
    status: Literal["active", "retired"] = "active"


_MODELS: dict[str, type[_Record]] = {
    DECISION_TYPE: DecisionRecord,
    SIGNER_TYPE: SignerRecord,
    ACCESS_TYPE: AccessRecord,
    ERASURE_TYPE: ErasureRecord,
}


def _validate_decision(obj: Any) -> _Record:
    """Version 2 when the record says so; anything else is read as version 1."""
    if isinstance(obj, dict) and obj.get("v") == 2:
        return CommittedDecision.model_validate(obj)
    return DecisionRecord.model_validate(obj)


def validate_payload(payload_type: str, payload: bytes) -> _Record:
    """Parse and validate ``payload`` for its declared type, or raise EnvelopeError."""
    model = _MODELS.get(payload_type)
    if model is None:
        raise EnvelopeError(
            f"payload type {payload_type!r} is not accepted by this log; "
            f"use one of {sorted(_MODELS)}",
            code="unsupported_payload_type",
            detail={"accepted": sorted(_MODELS)},
        )
    validate = _validate_decision if model is DecisionRecord else model.model_validate
    return _parse(validate, payload, payload_type)


def _parse(validate: Callable[[Any], _Record], payload: bytes, payload_type: str) -> _Record:
    try:
        return validate(orjson.loads(payload))
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(
            f"payload of type {payload_type} is not JSON", code="invalid_payload"
        ) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise EnvelopeError(
            f"payload of type {payload_type} is invalid at {where}: {first['msg']}",
            code="invalid_payload",
            detail={"errors": exc.errors(include_url=False, include_context=False)},
        ) from exc
