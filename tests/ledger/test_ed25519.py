"""Strict Ed25519: weak keys refused, one form per signature, against published vectors.

The weak-key table is libsodium's ``has_small_order`` blocklist (ed25519_ref10.c), each
entry with the x sign bit clear and set; the signature table is the twelve vectors of
"Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, SSR 2020; repository
novifinancial/ed25519-speccheck, cases.json). Under a key of small order the signature
``R = identity, S = 0`` verifies over every message in OpenSSL; here nothing does.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import BadRequest
from custodes.ledger import check_public_key, public_key_problem, verify_strict
from custodes.ledger.cosignature import verify_cosignature
from custodes.ledger.dsse import Envelope, Signature, key_thumbprint, verify_envelope
from custodes.ledger.ed25519 import GROUP_ORDER, SMALL_ORDER_ENCODINGS, signature_problem
from custodes.ledger.errors import EnvelopeError, NoteError
from custodes.ledger.note import (
    KEY_TYPE_COSIGNATURE,
    KEY_TYPE_ED25519,
    NoteSignature,
    NoteVerifier,
    key_id,
    open_note,
    parse_vkey,
)

P = 2**255 - 19
IDENTITY = bytes([1]) + bytes(31)

# libsodium's blocklist, as printed there: compared with the top (x sign) bit cleared.
LIBSODIUM_BLOCKLIST = [
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p - 1, order 2
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p, i.e. 0
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p + 1, i.e. 1
]


def _with_sign_bit(hex_key: str) -> bytes:
    raw = bytearray(bytes.fromhex(hex_key))
    raw[31] |= 0x80
    return bytes(raw)


WEAK_KEYS = [
    *(pytest.param(bytes.fromhex(h), id=f"{h[:8]}") for h in LIBSODIUM_BLOCKLIST),
    *(pytest.param(_with_sign_bit(h), id=f"{h[:8]}-x-sign") for h in LIBSODIUM_BLOCKLIST),
    # y = p + 2 .. 2^255 - 1 are all non-canonical; p + 3 is one that decodes to a point
    pytest.param((P + 3).to_bytes(32, "little"), id="y=p+3"),
    # mixed order: a prime-order point plus a torsion component (speccheck vector 3's A)
    pytest.param(
        bytes.fromhex("cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d"),
        id="mixed-order",
    ),
    pytest.param(bytes.fromhex("02" + "00" * 31), id="not-on-the-curve"),
]

# (message, public key, signature): none may verify strictly.
SPECCHECK = [
    (
        "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43"
        "a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
    (
        "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"
        "8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
    ),
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f"
        "87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
    ),
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed512"
        "5ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
    ),
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7"
        "e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
    ),
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e"
        "547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
    ),
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa1942"
        "7e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
    ),
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        "03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
    ),
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        "ca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
    ),
    (
        "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dc"
        "a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
    (
        "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dc"
        "a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
]


def _forged(s: int = 0) -> bytes:
    """A "signature" anyone can make: R = identity, S = s; no private key involved."""
    return IDENTITY + s.to_bytes(32, "little")


def _honest(seed: int = 7) -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.from_private_bytes(seed.to_bytes(32, "big"))
    return key, key.public_key().public_bytes_raw()


# --- the module ---------------------------------------------------------------------------


def test_the_blocklist_is_libsodiums_with_both_sign_bits() -> None:
    expected = {bytes.fromhex(h) for h in LIBSODIUM_BLOCKLIST}
    expected |= {_with_sign_bit(h) for h in LIBSODIUM_BLOCKLIST}
    assert expected == SMALL_ORDER_ENCODINGS


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_weak_keys_are_refused_with_a_reason(key: bytes) -> None:
    assert public_key_problem(key)
    with pytest.raises(BadRequest) as caught:
        check_public_key(key)
    assert (caught.value.status, caught.value.code) == (400, "weak_public_key")
    assert "Generate a new Ed25519 key pair" in caught.value.message


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_nothing_verifies_under_a_weak_key(key: bytes) -> None:
    for s in (0, 1):
        assert not verify_strict(key, _forged(s), b"any message")


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_keys_of_the_wrong_length_are_bad_not_weak(length: int) -> None:
    with pytest.raises(BadRequest) as caught:
        check_public_key(bytes(length))
    assert (caught.value.status, caught.value.code) == (400, "bad_public_key")


@pytest.mark.parametrize(
    ("message", "key", "signature"),
    [pytest.param(*case, id=f"speccheck-{n}") for n, case in enumerate(SPECCHECK)],
)
def test_no_taming_the_many_eddsas_vector_verifies(message: str, key: str, signature: str) -> None:
    assert not verify_strict(bytes.fromhex(key), bytes.fromhex(signature), bytes.fromhex(message))


@settings(max_examples=25, derandomize=True, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=64))
def test_honest_keys_and_signatures_pass(seed: bytes, message: bytes) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    assert public_key_problem(public) is None
    assert check_public_key(public) == public
    signature = key.sign(message)
    assert signature_problem(signature) is None
    assert verify_strict(public, signature, message)
    assert not verify_strict(public, signature, message + b"!")


def _with_s(signature: bytes, s: int) -> bytes:
    return signature[:32] + s.to_bytes(32, "little")


def test_a_second_form_of_s_is_refused() -> None:
    key, public = _honest()
    signature = key.sign(b"m")
    s = int.from_bytes(signature[32:], "little")
    for other in (s + GROUP_ORDER, GROUP_ORDER, 2**256 - 1):
        assert signature_problem(_with_s(signature, other))
        assert not verify_strict(public, _with_s(signature, other), b"m")


@pytest.mark.parametrize(
    "r",
    [
        *(pytest.param(e, id=f"small-{e.hex()[:8]}-{e[31] >> 7}") for e in SMALL_ORDER_ENCODINGS),
        pytest.param((P + 3).to_bytes(32, "little"), id="non-canonical"),
    ],
)
def test_an_r_of_small_order_or_non_canonical_is_refused(r: bytes) -> None:
    key, public = _honest()
    signature = r + key.sign(b"m")[32:]
    assert signature_problem(signature)
    assert not verify_strict(public, signature, b"m")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(key=st.binary(max_size=40), signature=st.binary(max_size=80), message=st.binary())
def test_verify_strict_never_raises(key: bytes, signature: bytes, message: bytes) -> None:
    assert verify_strict(key, signature, message) in (True, False)


# --- where keys enter the ledger, and where signatures are verified -----------------------


def test_dsse_refuses_a_forged_signature_under_a_weak_key() -> None:
    keyid = key_thumbprint(IDENTITY)
    for s in (0, 1):
        envelope = Envelope("application/x", b"{}", (Signature(keyid, _forged(s)),))
        with pytest.raises(EnvelopeError) as caught:
            verify_envelope(envelope, {keyid: IDENTITY}.get)
        assert caught.value.code == "bad_signature"
        assert "does not verify" in caught.value.message


def test_dsse_refuses_a_second_form_of_s() -> None:
    key, public = _honest()
    keyid = key_thumbprint(public)
    message = Envelope("application/x", b"{}", ()).signed_bytes()
    signature = key.sign(message)
    s = int.from_bytes(signature[32:], "little")
    envelope = Envelope(
        "application/x", b"{}", (Signature(keyid, _with_s(signature, s + GROUP_ORDER)),)
    )
    with pytest.raises(EnvelopeError, match="does not verify"):
        verify_envelope(envelope, {keyid: public}.get)


def _vkey(name: str, key_type: int, public: bytes) -> str:
    encoded = base64.b64encode(bytes([key_type]) + public).decode()
    return f"{name}+{key_id(name, key_type, public).hex()}+{encoded}"


@pytest.mark.parametrize(
    "key_type", [KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE], ids=["note", "witness"]
)
@pytest.mark.parametrize(
    "weak", [IDENTITY, bytes.fromhex(LIBSODIUM_BLOCKLIST[3])], ids=["identity", "order-8"]
)
def test_note_and_witness_vkeys_with_weak_keys_are_refused(key_type: int, weak: bytes) -> None:
    with pytest.raises(NoteError) as caught:
        parse_vkey(_vkey("log.example", key_type, weak))
    assert (caught.value.status, caught.value.code) == (400, "weak_public_key")
    with pytest.raises(NoteError):
        NoteVerifier("log.example", weak, key_type)


def test_an_honest_vkey_still_parses() -> None:
    _, public = _honest()
    verifier = parse_vkey(_vkey("log.example", KEY_TYPE_ED25519, public))
    assert verifier.public_key == public


def test_a_note_signature_in_a_second_form_does_not_verify() -> None:
    key, public = _honest()
    verifier = NoteVerifier("log.example", public)
    text = "log.example\n1\n" + "A" * 43 + "=\n"
    signature = key.sign(text.encode())
    s = int.from_bytes(signature[32:], "little")
    line = NoteSignature("log.example", verifier.key_id, _with_s(signature, s + GROUP_ORDER))
    note = f"{text}\n{line.line()}".encode()
    with pytest.raises(NoteError) as caught:
        open_note(note, [verifier])
    assert caught.value.code == "untrusted_signature"


def test_a_cosignature_in_a_second_form_does_not_verify() -> None:
    key, public = _honest()
    verifier = NoteVerifier("witness.example", public, KEY_TYPE_COSIGNATURE)
    text = "log.example\n1\n" + "A" * 43 + "=\n"
    message = f"cosignature/v1\ntime 100\n{text}".encode()
    signature = key.sign(message)
    s = int.from_bytes(signature[32:], "little")
    stamp = (100).to_bytes(8, "big")
    good = NoteSignature("witness.example", verifier.key_id, stamp + signature)
    assert verify_cosignature(text, good, verifier, now=100) == 100
    bad = NoteSignature(
        "witness.example", verifier.key_id, stamp + _with_s(signature, s + GROUP_ORDER)
    )
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(text, bad, verifier, now=100)
