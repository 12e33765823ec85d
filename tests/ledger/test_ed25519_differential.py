"""libsodium (the node's verifier) and OpenSSL (the reference) give the same answers.

``verify_strict`` checks the Ed25519 equation with libsodium through PyNaCl;
``verify_strict_reference`` runs the same strict checks with pyca/cryptography. Both must
accept and refuse exactly the same (key, signature, message) triples: honest ones,
tampered ones, random bytes, and the adversarial forms of "Taming the many EdDSAs",
including a signature whose R carries a torsion component (which a cofactored verifier
would accept and a cofactorless one refuses).
"""

from __future__ import annotations

import hashlib
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_core_ed25519_add, crypto_scalarmult_ed25519_base_noclamp

from custodes.ledger.ed25519 import (
    GROUP_ORDER,
    SMALL_ORDER_ENCODINGS,
    _python_key_problem,
    public_key_problem,
    verify_strict,
    verify_strict_reference,
)
from tests.ledger.test_ed25519 import SPECCHECK, WEAK_KEYS

P = 2**255 - 19
# A point of order 8 (libsodium's blocklist): added to R or to a key, a torsion component.
ORDER_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


def _agree(key: bytes, signature: bytes, message: bytes) -> bool:
    answer = verify_strict(key, signature, message)
    assert answer == verify_strict_reference(key, signature, message), (
        key.hex(),
        signature.hex(),
        message.hex(),
    )
    return answer


def _keypair(seed: bytes) -> tuple[Ed25519PrivateKey, bytes, int]:
    """A key, its public bytes, and its secret scalar (RFC 8032 5.1.5)."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] = (digest[31] & 63) | 64
    return key, key.public_key().public_bytes_raw(), int.from_bytes(digest, "little")


def _sign_with_r(scalar: int, public: bytes, r_point: bytes, r: int, message: bytes) -> bytes:
    """A signature with a chosen R whose discrete log part is ``r`` (S = r + k a)."""
    k = int.from_bytes(hashlib.sha512(r_point + public + message).digest(), "little")
    return r_point + ((r + k * scalar) % GROUP_ORDER).to_bytes(32, "little")


def _scalar_bytes(value: int) -> bytes:
    return (value % GROUP_ORDER).to_bytes(32, "little")


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=600),
    flip=st.integers(min_value=0, max_value=64 * 8 - 1),
)
def test_honest_and_tampered_signatures(seed: bytes, message: bytes, flip: int) -> None:
    key, public, _ = _keypair(seed)
    signature = key.sign(message)
    assert _agree(public, signature, message)
    tampered = bytearray(signature)
    tampered[flip // 8] ^= 1 << (flip % 8)
    assert not _agree(public, bytes(tampered), message)
    assert not _agree(public, signature, message + b"\x00")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=64, max_size=64),
    message=st.binary(max_size=64),
)
def test_random_bytes(key: bytes, signature: bytes, message: bytes) -> None:
    assert not _agree(key, signature, message)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(key=st.binary(max_size=40), signature=st.binary(max_size=80), message=st.binary())
def test_wrong_lengths_never_reach_either_library(
    key: bytes, signature: bytes, message: bytes
) -> None:
    assert _agree(key, signature, message) in (True, False)


@pytest.mark.parametrize(("message", "key", "signature"), SPECCHECK)
def test_taming_the_many_eddsas_vectors(message: str, key: str, signature: str) -> None:
    assert not _agree(bytes.fromhex(key), bytes.fromhex(signature), bytes.fromhex(message))


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_forgeries_under_weak_keys(key: bytes) -> None:
    for r in sorted(SMALL_ORDER_ENCODINGS):
        for s in (0, 1, GROUP_ORDER - 1):
            assert not _agree(key, r + s.to_bytes(32, "little"), b"any message")


def test_an_r_with_a_torsion_component_is_refused_by_both() -> None:
    """R = rB + T (T of order 8) with S = r + k a: valid for a cofactored verifier only."""
    rng = random.Random(14)
    for _ in range(8):
        _, public, scalar = _keypair(rng.randbytes(32))
        message = rng.randbytes(100)
        r = rng.randrange(1, GROUP_ORDER)
        honest_r = crypto_scalarmult_ed25519_base_noclamp(_scalar_bytes(r))
        assert _agree(public, _sign_with_r(scalar, public, honest_r, r, message), message)
        mixed_r = crypto_core_ed25519_add(honest_r, ORDER_8)
        assert not _agree(public, _sign_with_r(scalar, public, mixed_r, r, message), message)


def test_a_mixed_order_key_with_a_valid_signature_is_refused_by_both() -> None:
    """A' = A + T signing with the scalar of A: where 8 divides k mod L, SB - kA' = R holds, and
    OpenSSL alone accepts it; the strict key check refuses the key for both."""
    rng = random.Random(7)
    _, public, scalar = _keypair(rng.randbytes(32))
    mixed = crypto_core_ed25519_add(public, ORDER_8)
    r = rng.randrange(1, GROUP_ORDER)
    r_point = crypto_scalarmult_ed25519_base_noclamp(_scalar_bytes(r))
    message = next(
        m
        for m in (n.to_bytes(4, "big") for n in range(1000))
        if int.from_bytes(hashlib.sha512(r_point + mixed + m).digest(), "little") % GROUP_ORDER % 8
        == 0
    )
    signature = _sign_with_r(scalar, mixed, r_point, r, message)
    Ed25519PublicKey.from_public_bytes(mixed).verify(signature, message)  # OpenSSL: valid
    assert not _agree(mixed, signature, message)


def test_second_forms_of_s_and_non_canonical_r() -> None:
    key, public, _ = _keypair(bytes(range(32)))
    signature = key.sign(b"m")
    s = int.from_bytes(signature[32:], "little")
    for other in (s + GROUP_ORDER, GROUP_ORDER, 2**256 - 1):
        assert not _agree(public, signature[:32] + other.to_bytes(32, "little"), b"m")
    assert not _agree(public, (P + 3).to_bytes(32, "little") + signature[32:], b"m")


# --- the key check: libsodium's answer and the Python checks' ---------------------------


def _python_accepts(key: bytes) -> bool:
    return key not in SMALL_ORDER_ENCODINGS and _python_key_problem(key) is None


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=32, max_size=32))
def test_the_key_check_agrees_with_the_python_checks_on_random_bytes(key: bytes) -> None:
    assert (public_key_problem.__wrapped__(key) is None) == _python_accepts(key)


def test_the_key_check_agrees_on_honest_mixed_order_and_non_canonical_keys() -> None:
    rng = random.Random(7)
    honest = [_keypair(rng.randbytes(32))[1] for _ in range(20)]
    mixed = [crypto_core_ed25519_add(key, ORDER_8) for key in honest[:10]]
    non_canonical = [(P + y).to_bytes(32, "little") for y in range(19)]
    weak = [param.values[0] for param in WEAK_KEYS]
    for key in [*honest, *mixed, *non_canonical, *weak]:
        assert (public_key_problem.__wrapped__(key) is None) == _python_accepts(key), key.hex()
    assert all(public_key_problem.__wrapped__(key) is None for key in honest)
    assert all(public_key_problem.__wrapped__(key) is not None for key in mixed)
