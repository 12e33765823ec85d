"""DSSE v1 envelopes (secure-systems-lab/dsse protocol.md): the form of every entry.

An entry is the RFC 8785 canonical JSON of ``{"payload", "payloadType", "signatures"}``
with standard, padded base64. DSSE lets verifiers accept URL-safe base64 too, but a log
entry must have exactly one spelling, so URL-safe input is refused (``invalid_envelope``),
and so is standard base64 with non-zero padding bits (``non_canonical_json``).

Key ids are the lowercase hex SHA-256 of the raw 32-byte Ed25519 public key (a
thumbprint). DSSE treats the key id as an unauthenticated hint; here it selects the
registered key, and the signature must then verify under that key, strictly
(``custodes.ledger.ed25519``: no weak keys, no second forms of a signature).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.ed25519 import verify_strict
from custodes.ledger.errors import EnvelopeError

__all__ = [
    "MAX_SIGNATURES",
    "Envelope",
    "EnvelopeSigner",
    "Signature",
    "key_thumbprint",
    "pae",
    "parse_envelope",
    "sign_envelope",
    "verify_envelope",
]

MAX_SIGNATURES = 16
_FIELDS = {"payload", "payloadType", "signatures"}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    try:
        type_bytes = payload_type.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: no JSON text can carry it
        raise EnvelopeError("payloadType must be valid Unicode", code="invalid_envelope") from exc
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def key_thumbprint(public_key: bytes) -> str:
    """The key id used in envelopes: hex SHA-256 of the raw Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope; ``to_bytes`` is its canonical entry form."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in self.signatures
            ],
        }

    def to_bytes(self) -> bytes:
        return canonical_dumps(self.to_json())

    def signed_bytes(self) -> bytes:
        return pae(self.payload_type, self.payload)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"{what} must be a base64 string", code="invalid_envelope")
    # Fast path (the ingest path decodes two fields per entry): strict decoding plus an
    # exact round trip accepts only canonical base64, which the checks below accept too,
    # with the same bytes. Anything else goes through them for its precise refusal.
    with contextlib.suppress(binascii.Error, ValueError):
        raw = binascii.a2b_base64(value, strict_mode=True)
        if binascii.b2a_base64(raw, newline=False).decode() == value:
            return raw
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(
            f"{what} is not standard padded base64", code="invalid_envelope"
        ) from exc
    if base64.b64encode(raw).decode() != value:
        raise EnvelopeError(f"{what} is not canonical base64", code="non_canonical_json")
    return raw


def _parse_signature(item: Any) -> Signature:
    if not isinstance(item, dict) or set(item) != {"keyid", "sig"}:
        raise EnvelopeError(
            'each signature must be {"keyid": ..., "sig": ...}', code="invalid_envelope"
        )
    keyid = item["keyid"]
    if not isinstance(keyid, str) or not keyid:
        raise EnvelopeError("signature keyid must be a non-empty string", code="invalid_envelope")
    return Signature(keyid=keyid, sig=_b64(item["sig"], "signature"))


def parse_envelope(obj: Any) -> Envelope:
    """Validate the JSON shape of an envelope; raise EnvelopeError on anything else."""
    if not isinstance(obj, dict) or set(obj) != _FIELDS:
        raise EnvelopeError(
            "an entry must be a DSSE envelope with exactly payload, payloadType and signatures",
            code="invalid_envelope",
        )
    payload_type, sigs = obj["payloadType"], obj["signatures"]
    if not isinstance(payload_type, str) or not payload_type:
        raise EnvelopeError("payloadType must be a non-empty string", code="invalid_envelope")
    if not isinstance(sigs, list) or not 1 <= len(sigs) <= MAX_SIGNATURES:
        raise EnvelopeError(
            f"an envelope needs 1 to {MAX_SIGNATURES} signatures", code="invalid_envelope"
        )
    signatures = tuple(_parse_signature(s) for s in sigs)
    return Envelope(payload_type, _b64(obj["payload"], "payload"), signatures)


class EnvelopeSigner:
    """An Ed25519 key that signs envelopes (an agent's, a regulator's or the node's)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.keyid = key_thumbprint(self.public_key)

    @classmethod
    def generate(cls) -> EnvelopeSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> EnvelopeSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, message: bytes) -> Signature:
        return Signature(keyid=self.keyid, sig=self._key.sign(message))


def sign_envelope(payload_type: str, payload: bytes, signers: Sequence[EnvelopeSigner]) -> Envelope:
    message = pae(payload_type, payload)
    return Envelope(payload_type, payload, tuple(s.sign(message) for s in signers))


KeyLookup = Callable[[str], bytes | None]


def verify_envelope(envelope: Envelope, lookup: KeyLookup) -> list[str]:
    """Return the key ids whose signatures verify; fail closed on any doubt.

    A signature by a known key that does not verify rejects the whole envelope (as
    C2SP signed-note does); signatures by unknown keys are ignored, but at least one
    known key must have signed.
    """
    message = envelope.signed_bytes()
    verified: list[str] = []
    for signature in envelope.signatures:
        public = lookup(signature.keyid)
        if public is None:
            continue
        if not verify_strict(public, signature.sig, message):
            raise EnvelopeError(
                f"signature by key {signature.keyid[:16]}… does not verify over the envelope",
                code="bad_signature",
                detail={"keyid": signature.keyid},
            )
        verified.append(signature.keyid)
    if not verified:
        raise EnvelopeError(
            "no signature is by a key registered on this node; register the signer first",
            code="unknown_signer",
            status=403,
            detail={"keyids": [s.keyid for s in envelope.signatures]},
        )
    return verified
