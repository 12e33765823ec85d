"""Decision commitments: the public log holds metadata, the clear record stays home.

A version-2 decision record (``CommittedDecision``) carries, besides its public metadata
(agent, kind, time, idempotency key), a commitment to the full version-1 record in the
manner of an SD-JWT disclosure digest (RFC 9901 4.2), as private fields do
(``custodes.registry.private``)::

    commitment = "sha256:" + hex(SHA-256(JCS(["custodes.decision.v1", salt, record])))

``salt`` is at least 128 random bits (base64url), new for every record, so a record made
of guessable fields (an agent id, "allow", a date) cannot be found by trying values. The
domain tag keeps these digests apart from any other hash in the log; JCS (RFC 8785) on
both sides means the node recomputes exactly what the agent committed to.

The clear record and its salt (a :class:`DecisionOpening`) travel beside the envelope
(:class:`OpenedEntry`); the node checks them against the commitment and the metadata
before anything is written (:func:`open_decision`), then keeps them beside the log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custodes.errors import BadRequest
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope
from custodes.ledger.payloads import CommittedDecision, DecisionRecord, decision_kind

__all__ = [
    "MIN_SALT_BYTES",
    "DecisionOpening",
    "OpenedEntry",
    "commit_decision",
    "new_salt",
    "open_decision",
    "open_record",
    "parse_opening",
    "seal_decision",
]

MIN_SALT_BYTES = 16
_TAG = "custodes.decision.v1"


class DecisionOpening(BaseModel):
    """The clear text behind a decision's commitment: its salt and the full record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    salt: str = Field(min_length=1, max_length=128)
    record: dict[str, Any]


@dataclass(frozen=True)
class OpenedEntry:
    """An envelope with the opening of its commitment: one item of an append."""

    envelope: Envelope
    opening: DecisionOpening

    def to_json(self) -> dict[str, Any]:
        return {"envelope": self.envelope.to_json(), "opening": self.opening.model_dump()}


def new_salt() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(MIN_SALT_BYTES)).rstrip(b"=").decode()


_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def _check_salt(salt: str) -> None:
    if not _BASE64URL.match(salt):
        raise BadRequest("the decision's salt is not base64url (no padding)", code="bad_salt")
    try:
        raw = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("the decision's salt is not base64url", code="bad_salt") from exc
    if len(raw) < MIN_SALT_BYTES:
        raise BadRequest(
            f"the decision's salt holds {len(raw) * 8} bits; use at least "
            f"{MIN_SALT_BYTES * 8} random bits, new for every record",
            code="bad_salt",
        )


def commit_decision(salt: str, record: dict[str, Any]) -> str:
    """The commitment a version-2 record carries for ``record`` under ``salt``."""
    return _commitment(salt, canonical_dumps(record))


def _commitment(salt: str, record: bytes) -> str:
    """The commitment over ``record``'s canonical bytes: JCS of ``[tag, salt, record]``
    spelled out, as a base64url salt and the tag need no escaping."""
    _check_salt(salt)
    tagged = b'["%s","%s",%s]' % (_TAG.encode(), salt.encode(), record)
    return "sha256:" + hashlib.sha256(tagged).hexdigest()


def seal_decision(record: DecisionRecord) -> tuple[CommittedDecision, DecisionOpening]:
    """The public metadata of ``record`` and the opening that stays home."""
    opening = DecisionOpening(
        salt=new_salt(), record=record.model_dump(mode="json", exclude_none=True)
    )
    committed = CommittedDecision(
        v=2,
        agent=record.agent,
        kind="halt" if record.action == "halt" else "decision",
        decided_at=record.decided_at,
        idempotency_key=record.idempotency_key,
        commitment=commit_decision(opening.salt, opening.record),
        refs=record.refs,
    )
    return committed, opening


def parse_opening(obj: Any) -> DecisionOpening:
    try:
        return DecisionOpening.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "opening"
        raise BadRequest(
            f"the opening is invalid at {where}: {first['msg']}; send "
            '{"salt": <base64url>, "record": <the clear decision record>}',
            code="invalid_opening",
            status=422,
        ) from exc


def open_decision(meta: CommittedDecision, opening: DecisionOpening) -> DecisionRecord:
    """The clear record behind ``meta``, checked; a 400 when it does not open it."""
    return open_record(meta, opening)[0]


def open_record(meta: CommittedDecision, opening: DecisionOpening) -> tuple[DecisionRecord, bytes]:
    """The clear record behind ``meta``, checked, and its canonical bytes (to keep)."""
    try:
        record = DecisionRecord.model_validate(opening.record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise BadRequest(
            f"the clear decision record is invalid at {where}: {first['msg']}",
            code="invalid_opening",
            status=422,
        ) from exc
    # A valid record holds only ASCII keys, strings and the small int ``v``: orjson's
    # sorted output is its RFC 8785 form (as custodes.ledger.canonical's fast path). The
    # model takes ``v: 1.0`` as 1; RFC 8785 writes it "1", so it is refused here.
    if isinstance(opening.record.get("v"), float):
        raise BadRequest(
            "the clear record's v must be the integer 1", code="invalid_opening", status=422
        )
    clear = orjson.dumps(opening.record, option=orjson.OPT_SORT_KEYS)
    if _commitment(opening.salt, clear) != meta.commitment:
        raise BadRequest(
            "the clear record and salt sent do not reproduce the decision's commitment; "
            "nothing was written",
            code="commitment_mismatch",
        )
    _check_same(meta, record)
    return record, clear


def _check_same(meta: CommittedDecision, record: DecisionRecord) -> None:
    differ = [
        name
        for name, public, clear in (
            ("agent", meta.agent, record.agent),
            ("decided_at", meta.decided_at, record.decided_at),
            ("idempotency_key", meta.idempotency_key, record.idempotency_key),
            ("kind", meta.kind, decision_kind(record)),
            ("refs", meta.refs, record.refs),
        )
        if public != clear
    ]
    if differ:
        raise BadRequest(
            f"the clear record's {', '.join(differ)} differ from the logged metadata; the "
            "metadata must name the same agent, time, key and kind as the record",
            code="opening_mismatch",
            detail={"fields": differ},
        )
