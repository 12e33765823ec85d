"""Private fields: kept out of the public log behind a salted commitment (DESIGN.md 4.1).

A registry entry is public (tiles, ``/api/v1/entries``), so the personal data in it — an
operator's address and 24/7 contact, an agent's accountable contact — is replaced in the
signed payload by ``private``: a commitment in the manner of an SD-JWT disclosure digest
(RFC 9901 4.2)::

    private = "sha256:" + hex(SHA-256(JCS(["custodes.private.v1", salt, fields])))

``salt`` is at least 128 random bits (base64url), new for every change, so equal contacts
give unrelated commitments and none can be guessed from a list of likely values. The
domain tag keeps these digests apart from any other hash in the log; JCS (RFC 8785) on
both sides means the node recomputes exactly what the signer committed to.

The clear text (:class:`Opening`) travels beside the envelope; the node checks it against
the commitment before writing anything, and keeps it in ``private_fields``, not in the
log. Deleting a row there erases the data and leaves every proof valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custodes.errors import BadRequest
from custodes.ledger.canonical import canonical_dumps
from custodes.registry.models import (
    AgentChanges,
    AgentPrivate,
    AgentRecord,
    AgentRegister,
    AgentUpdate,
    OperatorPrivate,
    OperatorRecord,
    OperatorRegister,
    OperatorUpdate,
)

__all__ = [
    "MIN_SALT_BYTES",
    "Opening",
    "commit",
    "held_record",
    "new_salt",
    "request_body",
    "seal",
    "seal_change",
    "verify_opening",
]

MIN_SALT_BYTES = 16
_TAG = "custodes.private.v1"
_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    OperatorRecord: ("address", "contact"),
    AgentRecord: ("contact",),
    AgentChanges: ("contact",),
}


class Opening(BaseModel):
    """The clear text behind a commitment: its salt and the private fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    salt: str = Field(min_length=22, max_length=128)
    fields: dict[str, Any]


def new_salt() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(MIN_SALT_BYTES)).rstrip(b"=").decode()


def _salt_bytes(salt: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("the private fields' salt is not base64url", code="bad_salt") from exc
    if len(raw) < MIN_SALT_BYTES:
        raise BadRequest(
            f"the private fields' salt must hold at least {MIN_SALT_BYTES * 8} random bits",
            code="bad_salt",
        )
    return raw


def commit(opening: Opening) -> str:
    """The commitment a record carries for ``opening``."""
    _salt_bytes(opening.salt)
    digest = hashlib.sha256(canonical_dumps([_TAG, opening.salt, opening.fields])).hexdigest()
    return f"sha256:{digest}"


def seal(record: Any) -> tuple[Any, Opening | None]:
    """Move ``record``'s private fields into an opening; the record then commits to it.

    Works on an operator record, an agent record or an agent's changes; a record with no
    private field set is returned as it is, with no opening.
    """
    names = _FIELDS.get(type(record), ())
    values = {n: getattr(record, n) for n in names if getattr(record, n) is not None}
    if not values:
        return record, None
    fields = {n: v.model_dump() if isinstance(v, BaseModel) else v for n, v in values.items()}
    opening = Opening(salt=new_salt(), fields=fields)
    cleared = dict.fromkeys(values) | {"private": commit(opening)}
    return record.model_copy(update=cleared), opening


_HELD: dict[type[BaseModel], str] = {
    OperatorRegister: "operator",
    OperatorUpdate: "operator",
    AgentRegister: "agent",
    AgentUpdate: "changes",
}


def held_record(change: Any) -> Any:
    """The part of ``change`` that may hold private fields (None if it has none)."""
    name = _HELD.get(type(change))
    return None if name is None else getattr(change, name)


def seal_change(change: Any) -> tuple[Any, Opening | None]:
    """``change`` with its private fields replaced by a commitment, and their opening."""
    name = _HELD.get(type(change))
    if name is None:
        return change, None
    sealed, opening = seal(getattr(change, name))
    return change.model_copy(update={name: sealed}), opening


def request_body(envelope: dict[str, Any], opening: Opening | None) -> dict[str, Any]:
    """What to POST: the envelope alone, or with the clear text beside it."""
    if opening is None:
        return envelope
    return {"envelope": envelope, "private": opening.model_dump()}


def _expected(record: Any) -> type[BaseModel]:
    return OperatorPrivate if isinstance(record, OperatorRecord) else AgentPrivate


def verify_opening(change: Any, opening: Opening | None) -> Opening | None:
    """Check that ``change`` logs no private field in clear and that ``opening`` opens it.

    Returns the opening to keep (None when the change commits to nothing). Raises a 422
    for clear personal data or a missing opening, a 400 for a mismatch.
    """
    record = held_record(change)
    names = _FIELDS.get(type(record), ())
    clear = sorted(n for n in names if getattr(record, n) is not None)
    if clear:
        raise BadRequest(
            f"{', '.join(clear)} must not be logged in clear: send a salted commitment in "
            "'private' and the fields beside the envelope (custodes.client.Client does)",
            code="personal_data_in_entry",
            status=422,
        )
    committed = getattr(record, "private", None)
    if isinstance(record, OperatorRecord) and committed is None:
        raise BadRequest(
            "an operator's address and 24/7 contact are required, as private fields",
            code="private_fields_missing",
            status=422,
        )
    if committed is None:
        if opening is not None:
            raise BadRequest(
                "private fields were sent but the change commits to none", code="private_mismatch"
            )
        return None
    return _open(record, committed, opening)


def _open(record: Any, committed: str, opening: Opening | None) -> Opening:
    if opening is None:
        raise BadRequest(
            "the change commits to private fields; send them beside the envelope",
            code="private_fields_missing",
            status=422,
        )
    if commit(opening) != committed:
        raise BadRequest(
            "the private fields sent do not match the change's commitment; nothing was written",
            code="private_mismatch",
        )
    try:
        _expected(record).model_validate(opening.fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "fields"
        raise BadRequest(
            f"the private fields are invalid at {where}: {first['msg']}",
            code="invalid_payload",
            status=422,
        ) from exc
    return opening
