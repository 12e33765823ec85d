"""Strict Ed25519: refuse weak public keys; verify signatures that have one form only.

RFC 8032 leaves verifiers room, and OpenSSL (under pyca/cryptography) uses it: it
accepts a public key of small order, such as the identity point. With that key the
signature ``R = identity, S = 0`` verifies over every message, so nobody holds the
private key, anyone can sign, and the key's owner can disown anything "it" signed
(Chalkias, Garillot and Nikolaenko, "Taming the many EdDSAs", 2020). So here:

* a **public key** must be 32 bytes, canonically encoded (``y < p``, and no "negative
  zero": the x sign bit set where x is 0), a point on the curve, not of small order and
  without any small-order component (in the prime-order subgroup, as every key that
  honest key generation makes is). libsodium refuses the small-order and non-canonical
  keys (``has_small_order``); the subgroup check also refuses mixed-order keys, under
  which cofactored and cofactorless verifiers disagree;
* a **signature** must be 64 bytes with ``S < L`` (no malleable second spelling), and
  its ``R`` canonical and not of small order; then libsodium (through PyNaCl) checks the
  equation.

Checking a key is one libsodium call (``crypto_core_ed25519_is_valid_point``, the same
checks; the Python ones, a scalar multiplication of about 2 ms, only explain a refusal),
and the answer is cached for the 16,384 keys last seen; the per-signature checks compare bytes and
integers (about 0.5 us), so strict verification costs what libsodium's does.

Why libsodium for the equation (docs/design/0014-ingest.md): it verifies in about half
the time OpenSSL's Ed25519 takes under pyca/cryptography, and PyNaCl's cffi calls
release the GIL, so a pool of threads verifies on every core. The checks above run
first, whichever library checks the equation, so the two accept exactly the same
signatures: libsodium's ``crypto_sign_open`` refuses ``S >= L``, non-canonical and
small-order keys and ``R`` of small order itself, and compares the encoding of
``[S]B - [k]A`` with ``R`` byte for byte (cofactorless, as OpenSSL does), so an ``R``
with a torsion component fails in both. ``verify_strict_reference`` keeps the OpenSSL
path; tests/ledger/test_ed25519.py checks the two agree on random and adversarial input.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_core_ed25519_is_valid_point, crypto_sign_open
from nacl.exceptions import CryptoError

from custodes.errors import BadRequest

__all__ = [
    "GROUP_ORDER",
    "SMALL_ORDER_ENCODINGS",
    "check_public_key",
    "public_key_problem",
    "signature_problem",
    "verify_strict",
    "verify_strict_reference",
]

_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493  # L
_Y_MASK = (1 << 255) - 1
KEY_SIZE = 32
SIGNATURE_SIZE = 64

# The y coordinates of the eight points of order 1, 2, 4 and 8: 1 (the identity),
# p - 1, 0 (x = ±sqrt(-1)) and ±y8 (each with two x).
_Y8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
_SMALL_ORDER_Y = (1, _P - 1, 0, _Y8, _P - _Y8)


def _encodings(y: int) -> list[bytes]:
    """Every 32-byte spelling of y: both sign bits, canonical and (if it fits) y + p."""
    ys = [y] + ([y + _P] if y + _P <= _Y_MASK else [])
    return [(v | sign << 255).to_bytes(KEY_SIZE, "little") for v in ys for sign in (0, 1)]


# Eight points, fourteen spellings: the canonical eight, the "negative zero" forms of
# the two points with x = 0, and y = p and y = p + 1 (non-canonical 0 and 1) with
# either sign bit. libsodium's blocklist is the same set, compared without the sign bit.
SMALL_ORDER_ENCODINGS: frozenset[bytes] = frozenset(
    e for y in _SMALL_ORDER_Y for e in _encodings(y)
)

_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z
_IDENTITY: _Point = (0, 1, 1, 0)


def _add(p: _Point, q: _Point) -> _Point:
    """Point addition on -x^2 + y^2 = 1 + d x^2 y^2 (complete, so it also doubles)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * _D * t1 * t2 % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(point: _Point, scalar: int) -> _Point:
    result = _IDENTITY
    for bit in bin(scalar)[2:]:
        result = _add(result, result)
        if bit == "1":
            result = _add(result, point)
    return result


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0


def _decode(raw: bytes) -> _Point | str:
    """The point ``raw`` encodes (RFC 8032 5.1.3), or why it encodes none canonically."""
    encoded = int.from_bytes(raw, "little")
    y, sign = encoded & _Y_MASK, encoded >> 255
    if y >= _P:
        return "its y coordinate is not reduced modulo 2^255-19 (a non-canonical encoding)"
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if v * x * x % _P == -u % _P:
        x = x * _SQRT_M1 % _P
    if v * x * x % _P != u:
        return "it is not a point on the Ed25519 curve"
    if x == 0 and sign:
        return "it sets the sign of x = 0 (a non-canonical 'negative zero' encoding)"
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


@lru_cache(maxsize=16384)
def public_key_problem(raw: bytes) -> str | None:
    """Why ``raw`` cannot be a trusted Ed25519 public key, or ``None`` if it can.

    libsodium's ``crypto_core_ed25519_is_valid_point`` checks exactly this (canonical,
    on the curve, not of small order, in the prime-order subgroup) in about 50 us; a
    key it accepts is sound. A key it refuses goes through the Python checks below
    (a scalar multiplication, about 2 ms) to say why; should they find nothing, the key
    is refused all the same. tests/ledger/test_ed25519_differential.py checks that the
    two agree.
    """
    if len(raw) != KEY_SIZE:
        return f"an Ed25519 public key is {KEY_SIZE} bytes, not {len(raw)}"
    if raw in SMALL_ORDER_ENCODINGS:
        return "it is a point of small order, under which signatures can be forged"
    if crypto_core_ed25519_is_valid_point(raw):
        return None
    return _python_key_problem(raw) or "libsodium refuses it as an Ed25519 point"


def _python_key_problem(raw: bytes) -> str | None:
    """The key checks in Python (32 bytes, not a listed small-order encoding)."""
    point = _decode(raw)
    if isinstance(point, str):
        return point
    if not _is_identity(_multiply(point, GROUP_ORDER)):
        return "it has a small-order component (it is not in the prime-order subgroup)"
    return None


def check_public_key(raw: bytes, *, what: str = "public key") -> bytes:
    """Return ``raw`` if it is a sound Ed25519 public key; raise ``BadRequest`` if not.

    A key of the wrong length is ``bad_public_key``; a weak or non-canonical one
    (small order, torsion, not on the curve, y >= p, negative zero) is
    ``weak_public_key``. Both are 400: the sender must use another key.
    """
    problem = public_key_problem(bytes(raw))
    if problem is None:
        return raw
    code = "bad_public_key" if len(raw) != KEY_SIZE else "weak_public_key"
    raise BadRequest(
        f"The {what} is refused: {problem}. Generate a new Ed25519 key pair with a "
        "standard library and register its public key.",
        code=code,
    )


def signature_problem(signature: bytes) -> str | None:
    """Why ``signature`` is not a strict Ed25519 signature's form, or ``None``.

    Checks the form only (length, ``S < L``, ``R`` canonical and not of small order);
    ``verify_strict`` also checks the key and the equation.
    """
    if len(signature) != SIGNATURE_SIZE:
        return f"an Ed25519 signature is {SIGNATURE_SIZE} bytes, not {len(signature)}"
    r, s = bytes(signature[:32]), int.from_bytes(signature[32:], "little")
    if s >= GROUP_ORDER:
        return "its S is not reduced modulo the group order (a malleable second form)"
    if r in SMALL_ORDER_ENCODINGS:
        return "its R is a point of small order"
    if int.from_bytes(r, "little") & _Y_MASK >= _P:
        return "its R is not canonically encoded"
    return None


def verify_strict(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` is a strict Ed25519 signature over ``message`` by the key.

    False for a weak key, ``S >= L``, a small-order or non-canonical ``R``, or a
    signature that does not verify. Never raises on any bytes. libsodium checks the
    equation, outside the GIL.
    """
    if not _strict_form(public_key, signature):
        return False
    try:  # PyNaCl passes the key on unchecked: its 32 bytes are checked just above
        crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except CryptoError:  # BadSignatureError, and any refusal of the input's form
        return False
    return True


def verify_strict_reference(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """``verify_strict`` with the equation checked by pyca/cryptography (OpenSSL).

    The reference that ``verify_strict`` is tested against; same checks, same answers.
    """
    if not _strict_form(public_key, signature):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _strict_form(public_key: bytes, signature: bytes) -> bool:
    """The checks both equation libraries run after: a sound key, a strict signature form."""
    return public_key_problem(bytes(public_key)) is None and signature_problem(signature) is None
