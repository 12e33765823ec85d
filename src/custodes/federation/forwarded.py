"""Forwarded kill orders: the message one member's node sends another, and its check.

A host regulator's order for an agent homed elsewhere travels to the home node as a DSSE
envelope of ``FORWARD_TYPE`` signed by the *sending node's entry key*, over::

    {"v": 1, "message_id": "<uuid>", "from": "FR", "to": "GB",
     "order": <the regulator's own signed kill-order envelope>, "sent_at": <Unix s>}

with the header ``Idempotency-Key: "<message_id>"`` (a structured-field string,
draft-ietf-httpapi-idempotency-key-header). ``open_forward`` is the parser: an
``OpenedForward`` exists only once the sender is an active member on the roster in force,
its entry key signed the message, and a regulator the roster vouches for under that
member signed the order inside. Past it, the home's ordinary authority rules decide
(``RegistryService.issue_verified_order``) and its inbox makes the effect exactly-once.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custodes.errors import AuthError, BadRequest
from custodes.federation.roster import Party, PartyRegulator
from custodes.federation.state import Federation
from custodes.killswitch.inbox import InboxAnswer, OrderInbox
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import (
    Envelope,
    EnvelopeSigner,
    key_thumbprint,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from custodes.ledger.errors import EnvelopeError
from custodes.registry.principals import Principal
from custodes.registry.service import ORDER_TYPE, RegistryService

__all__ = [
    "FORWARD_TYPE",
    "ForwardedOrder",
    "OpenedForward",
    "OrderReceiver",
    "forward_digest",
    "idempotency_key",
    "open_forward",
    "sign_forward",
]

FORWARD_TYPE = "application/vnd.custodes.forwarded-order+json"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_KEY = re.compile(rf'^"({_UUID})"$')


class ForwardedOrder(BaseModel):
    """What a forward's envelope signs (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    v: Literal[1] = 1
    message_id: str = Field(pattern=rf"^{_UUID}$")
    sender: str = Field(alias="from", pattern=r"^[A-Z]{2}$")
    to: str = Field(pattern=r"^[A-Z]{2}$")
    order: dict[str, Any]
    sent_at: int = Field(ge=0)


def idempotency_key(header: str | None) -> str:
    """The message id in an ``Idempotency-Key`` header (a quoted UUID), or 400."""
    if header is None:
        raise BadRequest(
            'a forwarded order needs the header Idempotency-Key: "<message uuid>"',
            code="missing_idempotency_key",
        )
    found = _KEY.match(header.strip())
    if found is None:
        raise BadRequest(
            'Idempotency-Key must be a quoted lower-case UUID, e.g. "8e03978e-40d5-43e8-'
            'bc93-6894a57f9324" (a structured-field string)',
            code="bad_idempotency_key",
        )
    return found.group(1)


def sign_forward(
    message_id: str, sender: str, to: str, order: Envelope, *, node: EnvelopeSigner, now: float
) -> Envelope:
    """The forward of ``order`` from ``sender`` to ``to``, signed by the sender's entry key."""
    message = ForwardedOrder(
        message_id=message_id, sender=sender, to=to, order=order.to_json(), sent_at=int(now)
    )
    payload = canonical_dumps(message.model_dump(by_alias=True))
    return sign_envelope(FORWARD_TYPE, payload, [node])


def forward_digest(forward: Envelope) -> str:
    """The fingerprint of a forward (hex SHA-256 of its signed payload)."""
    return hashlib.sha256(forward.payload).hexdigest()


@dataclass(frozen=True)
class OpenedForward:
    """A forward whose sender, node signature and regulator signature checked out."""

    sender: Party
    message: ForwardedOrder
    order: Envelope
    regulator: PartyRegulator
    issuer: Principal
    digest: str


def open_forward(obj: Any, message_id: str, federation: Federation) -> OpenedForward:
    """Check a forward (see the module docstring); 4xx for anything that fails."""
    envelope = parse_envelope(obj)
    if envelope.payload_type != FORWARD_TYPE:
        raise BadRequest(
            f"expected payloadType {FORWARD_TYPE}", code="unsupported_payload_type", status=422
        )
    message = _message(envelope.payload)
    _addressed(message, message_id, federation.jurisdiction)
    party = _sender(federation, message.sender)
    _signed_by(envelope, party.entry_public_key(), f"the {party.code} node's entry key")
    order = parse_envelope(message.order)
    if order.payload_type != ORDER_TYPE:
        raise BadRequest(
            f"the forwarded order must be a {ORDER_TYPE} envelope",
            code="unsupported_payload_type",
            status=422,
        )
    regulator = _regulator(party, order)
    issuer = _principal(party, regulator)
    return OpenedForward(party, message, order, regulator, issuer, forward_digest(envelope))


def _message(payload: bytes) -> ForwardedOrder:
    try:
        return ForwardedOrder.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise BadRequest(
            f"the forwarded order is invalid at {where}: {first['msg']}",
            code="invalid_payload",
            status=422,
        ) from exc


def _addressed(message: ForwardedOrder, message_id: str, here: str) -> None:
    if message.message_id != message_id:
        raise BadRequest(
            "the Idempotency-Key header and the signed message_id differ; send the "
            "message's own id as the key",
            code="idempotency_key_mismatch",
            status=422,
        )
    if message.to != here or message.sender == here:
        raise BadRequest(
            f"this forward is from {message.sender} to {message.to}; this is the {here} node",
            code="wrong_recipient",
            status=422,
        )


def _sender(federation: Federation, code: str) -> Party:
    party = federation.party(code)
    if party is None:
        raise AuthError(
            f"{code} is not a party on the alliance roster in force here; only members "
            "forward kill orders",
            code="unknown_party",
            status=403,
        )
    if party.status == "partner":
        raise AuthError(
            f"{code} is a partner of the alliance: partners issue no kill orders",
            code="partner_no_orders",
            status=403,
        )
    if party.status != "member":
        raise AuthError(
            f"{code} is {party.status} on the roster and forwards no orders until restored",
            code="party_not_active",
            status=403,
        )
    return party


def _signed_by(envelope: Envelope, public_key: bytes, what: str) -> list[str]:
    keyid = key_thumbprint(public_key)
    try:
        return verify_envelope(envelope, lambda kid: public_key if kid == keyid else None)
    except EnvelopeError as exc:
        raise AuthError(
            f"the envelope is not signed by {what}", code="bad_signature", status=403
        ) from exc


def _regulator(party: Party, order: Envelope) -> PartyRegulator:
    """The regulator of ``party`` (from the roster) whose key signed ``order``."""
    for regulator in party.regulators:
        if _signs(regulator, order):
            return regulator
    raise AuthError(
        f"the order is not signed by a regulator the roster vouches for under {party.code}",
        code="unknown_regulator",
        status=403,
    )


def _signs(regulator: PartyRegulator, order: Envelope) -> bool:
    public_key = base64.b64decode(regulator.public_key)
    keyid = key_thumbprint(public_key)
    if all(s.keyid != keyid for s in order.signatures):
        return False
    _signed_by(order, public_key, regulator.id)  # a bad signature by its key: refused
    return True


def _principal(party: Party, regulator: PartyRegulator) -> Principal:
    keyid = key_thumbprint(base64.b64decode(regulator.public_key))
    return Principal(
        regulator.id, "regulator", party.code, regulator.name, keyid, frozenset({"orders:write"})
    )


class OrderReceiver:
    """The home side: checks a forward against the roster, then logs it once.

    Before the first order of a foreign regulator is logged (``knows(keyid)`` false),
    ``know_signer(name, public_key)`` makes its key (the roster's) a signer of this log,
    so the log's own audit, which replays the signer history from the log, verifies the
    regulator's envelope as it verifies every other. That order's authority is checked
    first, so a
    refused order writes nothing.
    """

    def __init__(
        self,
        federation: Federation,
        registry: RegistryService,
        inbox: OrderInbox,
        know_signer: Callable[[str, bytes], None],
        knows: Callable[[str], bool],
    ) -> None:
        self._federation, self._registry, self._inbox = federation, registry, inbox
        self._know_signer, self._knows = know_signer, knows

    def receive(self, obj: Any, key_header: str | None) -> tuple[OpenedForward, InboxAnswer]:
        message_id = idempotency_key(key_header)
        opened = open_forward(obj, message_id, self._federation)
        sender = opened.sender.code
        known = self._inbox.answered(sender, message_id, opened.digest)
        if known is not None:
            return opened, known
        regulator = opened.regulator
        if not self._knows(opened.issuer.keyid):
            # Only before the regulator's first order: a refused order must write nothing,
            # so its key is logged once the order is known to pass (later orders are
            # checked in their own sequencing transaction alone).
            self._registry.check_order(opened.order, opened.issuer)
            self._know_signer(regulator.id, base64.b64decode(regulator.public_key))
        answer = self._inbox.receive(sender, message_id, opened.digest, opened.order, opened.issuer)
        return opened, answer
