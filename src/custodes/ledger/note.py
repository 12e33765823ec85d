"""C2SP signed notes (c2sp.org/signed-note@v1.0.0) with Ed25519 keys (type 0x01).

A signed note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(key ID || signature)``. The text is split from the signatures at
the *last* blank line, so the text may itself hold blank lines.

Where the spec leaves room, this module is strict:

* base64 must be canonical (what re-encoding the bytes gives), so a value has one spelling;
* key names may not hold control characters either (no note could carry them), and key
  IDs in vkeys and private keys are 8 lowercase hex digits, as x/mod writes them;
* every signature from a known key is verified, repeats too, and one failure rejects the
  note (the spec's SHOULD); the verified list names each key once, so a repeated line
  never counts twice towards a quorum;
* vkeys of type 0x04 (tlog-cosignature) parse here too; ``open_note`` ignores them;
* weak public keys (small order, torsion, non-canonical) are refused, and signatures
  are verified strictly (``custodes.ledger.ed25519``);
* private keys use the x/mod form (not C2SP): ``PRIVATE+KEY+<name>+<hex key ID>+``
  ``base64(type || 32-byte seed)``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodes.ledger.ed25519 import public_key_problem, verify_strict
from custodes.ledger.errors import NoteError

__all__ = [
    "KEY_TYPE_COSIGNATURE",
    "KEY_TYPE_ED25519",
    "MAX_SIGNATURES",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "check_key_name",
    "key_id",
    "open_note",
    "parse_note",
    "parse_private_key",
    "parse_vkey",
    "sign_note",
]

KEY_TYPE_ED25519 = 0x01
KEY_TYPE_COSIGNATURE = 0x04
MAX_SIGNATURES = 100
_VERIFIER_TYPES = (KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE)
_SIG_PREFIX = "\u2014 "
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_MALFORMED = "malformed_note"
_UNTRUSTED = "untrusted_signature"


def _encode_base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode_base64(text: str) -> bytes | None:
    """Decode canonical standard base64; ``None`` if ``text`` is anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII characters
        return None
    return raw if _encode_base64(raw) == text else None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _check_text(text: str, *, code: str = _MALFORMED) -> None:
    """Raise unless ``text`` can be the text of a signed note."""
    if not text.endswith("\n"):
        raise NoteError("The note text must end with a newline; add one.", code=code)
    if _CONTROL.search(text) or not _is_utf8(text):
        message = "The note text must be UTF-8 without control characters except newline."
        raise NoteError(message, code=code)


def _is_valid_name(name: str) -> bool:
    if not name or "+" in name or not _is_utf8(name):
        return False
    return not any(ch.isspace() or ch < " " for ch in name)


def check_key_name(name: str, *, code: str = "bad_key") -> None:
    """Raise ``NoteError`` unless ``name`` is a valid note key name."""
    if not _is_valid_name(name):
        raise NoteError(
            f"The key name {name!r} is not allowed: it must be non-empty and contain no "
            "spaces, '+' or control characters (for example 'example.com/log').",
            code=code,
        )


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: ``SHA-256(name || 0x0A || type || public key)[:4]``."""
    check_key_name(name)
    if not 0 <= key_type <= 0xFF:
        raise NoteError(f"The key type {key_type} is not a single byte (0-255).", code="bad_key")
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()
    return digest[:4]


def _check_public_key(raw: bytes) -> None:
    """Refuse a key of the wrong length (bad_key) or a weak one (weak_public_key, 400)."""
    problem = public_key_problem(raw)
    if problem is None:
        return
    if len(raw) != 32:
        message = f"An Ed25519 public key is 32 bytes, not {len(raw)}; check the key."
        raise NoteError(message, code="bad_key")
    raise NoteError(
        f"The verifier key is refused: {problem}. Ask its owner for a freshly generated key.",
        code="weak_public_key",
        status=400,
    )


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted public key: type 0x01 verifies notes, type 0x04 verifies cosignatures.

    ``verify`` checks a raw Ed25519 signature over ``message``; for cosignature keys the
    caller builds the cosignature message (see ``custodes.ledger.cosignature``).
    """

    name: str
    public_key: bytes
    key_type: int = KEY_TYPE_ED25519
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        if self.key_type not in _VERIFIER_TYPES:
            raise NoteError(
                f"Key type 0x{self.key_type:02x} is not supported; use Ed25519 note keys "
                "(0x01) or Ed25519 cosignature keys (0x04).",
                code="bad_key",
            )
        _check_public_key(self.public_key)
        object.__setattr__(self, "key_id", key_id(self.name, self.key_type, self.public_key))

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Strict Ed25519 (``custodes.ledger.ed25519.verify_strict``): no second forms."""
        return verify_strict(self.public_key, signature, message)

    def vkey(self) -> str:
        """The verifier key string ``<name>+<hex key ID>+base64(type || public key)``."""
        encoded = _encode_base64(bytes([self.key_type]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


def _bad_vkey(reason: str) -> NoteError:
    return NoteError(
        f"The verifier key is malformed: {reason}. Expected '<name>+<8 hex digits>+<base64>', "
        "as printed by the key's owner.",
        code="bad_key",
    )


def parse_vkey(vkey: str) -> NoteVerifier:
    """Parse a verifier key of type 0x01 (note signatures) or 0x04 (cosignatures)."""
    parts = vkey.split("+", 2)
    if len(parts) != 3 or not _HEX_KEY_ID.fullmatch(parts[1]):
        raise _bad_vkey("it must have a name, an 8-digit lowercase hex key ID and a key")
    name, id_hex, encoded = parts
    raw = _decode_base64(encoded)
    if raw is None or len(raw) != 33:
        raise _bad_vkey("the key part must be canonical base64 of a type byte and 32 key bytes")
    # The key ID first: a mistyped vkey is malformed (bad_key), not a weak key.
    if key_id(name, raw[0], raw[1:]).hex() != id_hex:
        raise _bad_vkey(f"the key ID {id_hex} does not match the name and key")
    return NoteVerifier(name, raw[1:], raw[0])


@dataclass(frozen=True)
class _Ed25519Signer:
    """An Ed25519 private key with a note key name; subclasses fix the key type."""

    key_type: ClassVar[int] = KEY_TYPE_ED25519
    name: str
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    public_key: bytes = field(init=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_key", self.private_key.public_key().public_bytes_raw())
        object.__setattr__(self, "key_id", key_id(self.name, self.key_type, self.public_key))

    @classmethod
    def generate(cls, name: str) -> Self:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Self:
        if len(seed) != 32:
            raise NoteError("An Ed25519 private key seed is 32 bytes.", code="bad_key")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        """A raw 64-byte Ed25519 signature over ``message``."""
        return self.private_key.sign(message)

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.public_key, self.key_type)

    def vkey(self) -> str:
        return self.verifier().vkey()

    def private_key_string(self) -> str:
        """The secret key as ``PRIVATE+KEY+<name>+<hex key ID>+base64(type || seed)``."""
        encoded = _encode_base64(bytes([self.key_type]) + self.private_key.private_bytes_raw())
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"


class NoteSigner(_Ed25519Signer):
    """Signs note text with Ed25519 (signature type 0x01)."""

    key_type = KEY_TYPE_ED25519


_S = TypeVar("_S", bound=_Ed25519Signer)


def _bad_private_key(reason: str) -> NoteError:
    # Never echo the input: it is a secret.
    return NoteError(
        f"The private key is malformed: {reason}. Expected "
        "'PRIVATE+KEY+<name>+<8 hex digits>+<base64>', as written by key generation.",
        code="bad_key",
    )


def _parse_signer(text: str, cls: type[_S]) -> _S:
    parts = text.removeprefix(_PRIVATE_PREFIX).split("+", 2)
    if not text.startswith(_PRIVATE_PREFIX) or len(parts) != 3:
        raise _bad_private_key("it must start with 'PRIVATE+KEY+' and have four '+' separators")
    name, id_hex, encoded = parts
    raw = _decode_base64(encoded)
    if not _HEX_KEY_ID.fullmatch(id_hex) or raw is None or len(raw) != 33:
        raise _bad_private_key("it needs an 8-digit lowercase hex key ID and a base64 key")
    if raw[0] != cls.key_type:
        raise _bad_private_key(
            f"its key type is 0x{raw[0]:02x} but {cls.__name__} needs 0x{cls.key_type:02x}"
        )
    signer = cls.from_seed(name, raw[1:])
    if signer.key_id.hex() != id_hex:
        raise _bad_private_key(f"the key ID {id_hex} does not match the name and key")
    return signer


def parse_private_key(text: str) -> NoteSigner:
    """Load a note signing key written by ``NoteSigner.private_key_string``."""
    return _parse_signer(text, NoteSigner)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name, code=_MALFORMED)
        if len(self.key_id) != 4 or not self.signature:
            raise NoteError(
                "A note signature needs a 4-byte key ID and at least one signature byte.",
                code=_MALFORMED,
            )

    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {_encode_base64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A note's text (ending in a newline) and its 1 to ``MAX_SIGNATURES`` signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_text(self.text)
        object.__setattr__(self, "signatures", tuple(self.signatures))
        if not 1 <= len(self.signatures) <= MAX_SIGNATURES:
            count = len(self.signatures)
            raise _malformed(f"it must carry 1 to {MAX_SIGNATURES} signatures, not {count}")

    def to_bytes(self) -> bytes:
        lines = "".join(sig.line() for sig in self.signatures)
        return f"{self.text}\n{lines}".encode()


def _malformed(reason: str) -> NoteError:
    return NoteError(f"The signed note is malformed: {reason}.", code=_MALFORMED)


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise _malformed("every line after the last blank line must start with '— '")
    name, space, encoded = line.removeprefix(_SIG_PREFIX).partition(" ")
    raw = _decode_base64(encoded)
    if not space or not _is_valid_name(name) or raw is None or len(raw) < 5:
        raise _malformed("a signature line must be '— <key name> <base64 of 5 or more bytes>'")
    return NoteSignature(name, raw[:4], raw[4:])


def parse_note(data: bytes) -> Note:
    """Parse a signed note without verifying it. Raises ``NoteError`` (malformed_note)."""
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("it is not valid UTF-8") from exc
    if _CONTROL.search(message):
        raise _malformed("it contains control characters other than newline")
    split = message.rfind("\n\n")
    if split < 0 or not message.endswith("\n"):
        raise _malformed("it needs text, a blank line and newline-terminated signature lines")
    lines = message[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _malformed(f"it has more than {MAX_SIGNATURES} signature lines")
    return Note(message[: split + 1], tuple(_parse_signature_line(line) for line in lines))


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """Sign ``text`` (which must end in a newline) with each signer, in order."""
    _check_text(text)
    signatures = []
    for signer in signers:
        if not isinstance(signer, NoteSigner):  # e.g. a witness key, which must cosign()
            message = "sign_note needs NoteSigner keys; witnesses sign with cosign()."
            raise NoteError(message, code="bad_key")
        signatures.append(NoteSignature(signer.name, signer.key_id, signer.sign(text.encode())))
    return Note(text, tuple(signatures)).to_bytes()


def _verifier_index(
    verifiers: Iterable[NoteVerifier], key_type: int
) -> dict[tuple[str, bytes], NoteVerifier]:
    """Verifiers of ``key_type`` by (name, key ID); refuses two keys sharing both."""
    index: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        if verifier.key_type != key_type:
            continue
        known = index.setdefault((verifier.name, verifier.key_id), verifier)
        if known.public_key != verifier.public_key:
            raise NoteError(
                f"Two configured keys share the name {verifier.name!r} and key ID "
                f"{verifier.key_id.hex()}; remove the one that is not trusted.",
                code="ambiguous_key",
                status=500,  # a configuration fault, not the sender's
            )
    return index


def open_note(data: bytes, verifiers: Sequence[NoteVerifier]) -> tuple[Note, list[NoteSignature]]:
    """Parse and verify ``data`` with trusted Ed25519 (0x01) keys, ignoring unknown signers.

    A known key's failing signature rejects the note, as does having no verified known
    signature. Returns the note and its verified signatures, one per key.
    """
    note = parse_note(data)
    known = _verifier_index(verifiers, KEY_TYPE_ED25519)
    message = note.text.encode()
    verified: dict[tuple[str, bytes], NoteSignature] = {}
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verify(message, signature.signature):
            key = f"{verifier.name}+{verifier.key_id.hex()}"
            reason = f"The signature by trusted key {key} does not verify: the note was altered."
            raise NoteError(reason, code=_UNTRUSTED, status=403, detail={"key": key})
        verified.setdefault((signature.name, signature.key_id), signature)
    if not verified:
        raise NoteError(
            "The note has no trusted signature: none of its signers is a configured key. "
            "Check that the verifier key for this log is configured.",
            code=_UNTRUSTED,
            status=403,
            detail={"signers": sorted({f"{s.name}+{s.key_id.hex()}" for s in note.signatures})},
        )
    return note, list(verified.values())
