"""Signed notes: public x/mod vectors, strict parsing and the verifier rules."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.ledger.cosignature import CosignatureSigner
from custodes.ledger.errors import NoteError
from custodes.ledger.note import (
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    check_key_name,
    key_id,
    open_note,
    parse_note,
    parse_private_key,
    parse_vkey,
    sign_note,
)

# Public vectors from golang.org/x/mod sumdb/note/note_test.go (TestNewVerifier,
# TestNewSigner, TestSign, TestOpen).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTG"
    "wnWLox33WWd1RvMc+QQ=\n"
)
PETER = parse_vkey(PETER_VKEY)
ENOCH = parse_vkey(ENOCH_VKEY)


def _code(exc: pytest.ExceptionInfo[NoteError]) -> tuple[str, int]:
    return exc.value.code, exc.value.status


# --- public vectors -------------------------------------------------------------------------


def test_peter_vkey_parses_to_the_published_key_id() -> None:
    assert (PETER.name, PETER.key_id.hex(), PETER.key_type) == ("PeterNeumann", "c74f20a3", 1)
    assert key_id("PeterNeumann", 0x01, PETER.public_key) == bytes.fromhex("c74f20a3")
    assert PETER.vkey() == PETER_VKEY


def test_peter_private_key_loads_and_writes_back_unchanged() -> None:
    signer = parse_private_key(PETER_SKEY)
    assert signer.vkey() == PETER_VKEY
    assert signer.private_key_string() == PETER_SKEY


def test_signing_the_x_mod_text_reproduces_the_published_note() -> None:
    signer = parse_private_key(PETER_SKEY)  # Ed25519 is deterministic
    assert sign_note(TEXT, [signer]) == (TEXT + "\n" + PETER_SIG).encode()


def test_published_note_opens_with_only_the_known_signature_counted() -> None:
    data = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    note, verified = open_note(data, [PETER])
    assert note.text == TEXT
    assert [(s.name, s.key_id.hex()) for s in verified] == [("PeterNeumann", "c74f20a3")]
    assert len(note.signatures) == 2
    _, both = open_note(data, [PETER, ENOCH])
    assert [s.name for s in both] == ["PeterNeumann", "EnochRoot"]


def test_published_note_without_a_known_key_is_untrusted() -> None:
    with pytest.raises(NoteError, match="no trusted signature") as exc:
        open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), [])
    assert _code(exc) == ("untrusted_signature", 403)


def test_corrupted_published_signature_rejects_the_note() -> None:
    data = (TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]).encode()
    with pytest.raises(NoteError) as exc:
        open_note(data, [PETER])
    assert _code(exc) == ("untrusted_signature", 403)


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT
        + "\n"
        + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG + "— PeterNeumann AAAA\n",  # only 3 bytes
        TEXT + "\r\n" + PETER_SIG,
    ],
)
def test_x_mod_malformed_messages_are_rejected(message: str) -> None:
    with pytest.raises(NoteError) as exc:
        open_note(message.encode(), [PETER])
    assert _code(exc) == ("malformed_note", 422)


def test_a_second_base64_spelling_of_a_valid_signature_is_refused() -> None:
    respelled = PETER_SIG.replace("JnAM=", "JnAN=")  # sets an unused padding bit
    blobs = [line.rsplit(" ", 1)[1] for line in (respelled, PETER_SIG)]
    assert blobs[0] != blobs[1]
    assert base64.b64decode(blobs[0]) == base64.b64decode(blobs[1])
    with pytest.raises(NoteError) as exc:
        open_note((TEXT + "\n" + respelled).encode(), [PETER])
    assert _code(exc) == ("malformed_note", 422)


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        parse_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode())


def _manglings(text: str) -> list[str]:
    """Every proper substring and every one-character bump, as x/mod's tests try."""
    subs = {text[i:j] for i in range(len(text) + 1) for j in range(i + 1, len(text) + 1)}
    bumps = {text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :] for i in range(len(text))}
    return sorted((subs | bumps) - {text})


def test_every_mangled_vkey_is_rejected() -> None:
    for bad in _manglings(PETER_VKEY):
        with pytest.raises(NoteError):
            parse_vkey(bad)


def test_every_mangled_private_key_is_rejected() -> None:
    for bad in _manglings(PETER_SKEY):
        with pytest.raises(NoteError):
            parse_private_key(bad)


@pytest.mark.parametrize(
    "vkey",
    [
        # x/mod: wrong key length and unknown algorithm, each with an adjusted key hash.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper hex
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",  # bits
    ],
)
def test_bad_vkeys_are_rejected_as_bad_keys(vkey: str) -> None:
    with pytest.raises(NoteError) as exc:
        parse_vkey(vkey)
    assert exc.value.code == "bad_key"


def test_x_mod_style_vkey_from_transparency_dev_parses() -> None:
    # transparency-dev/formats note/note_cosigv1_test.go TestCoSigV1NewVerifier.
    verifier = parse_vkey("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")
    assert (verifier.name, verifier.key_id.hex()) == ("TEST", "7997405c")


# --- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2028b", "a\x01b"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(NoteError, match="key name"):
        check_key_name(name)
    with pytest.raises(NoteError):
        NoteSigner.generate(name)


def test_key_id_is_the_truncated_sha256_of_name_type_and_key() -> None:
    signer = NoteSigner.generate("example.com/log")
    digest = hashlib.sha256(b"example.com/log\n\x01" + signer.public_key).digest()
    assert signer.key_id == digest[:4]


def test_generated_keys_round_trip_through_their_strings() -> None:
    signer = NoteSigner.generate("example.com/log")
    again = parse_private_key(signer.private_key_string())
    assert again.vkey() == signer.vkey()
    assert parse_vkey(signer.vkey()) == signer.verifier()


def test_signer_repr_does_not_reveal_the_private_key() -> None:
    signer = NoteSigner.generate("example.com/log")
    # PRIVATE+KEY+<name>+<hash>+<base64>: the base64 may itself contain "+".
    secret = signer.private_key_string().split("+", 4)[4]
    assert len(secret) > 40
    assert secret not in repr(signer)
    assert "example.com/log" in repr(signer)


def test_parse_private_key_refuses_a_witness_key_and_says_why() -> None:
    witness_key = CosignatureSigner.generate("witness.example").private_key_string()
    with pytest.raises(NoteError, match="0x04") as exc:
        parse_private_key(witness_key)
    assert witness_key not in exc.value.message


def test_unsupported_key_type_is_refused() -> None:
    with pytest.raises(NoteError, match="0x02"):
        NoteVerifier("example.com/log", PETER.public_key, 0x02)


# --- signing and opening -----------------------------------------------------------------

LOG = NoteSigner.from_seed("example.com/log", bytes(range(32)))
OTHER = NoteSigner.from_seed("example.com/other", bytes(range(1, 33)))


def test_sign_note_requires_a_final_newline() -> None:
    with pytest.raises(NoteError, match="newline") as exc:
        sign_note("no newline", [LOG])
    assert exc.value.code == "malformed_note"


def test_sign_note_refuses_a_witness_key() -> None:
    witness = CosignatureSigner.generate("witness.example")
    with pytest.raises(NoteError, match="cosign"):
        sign_note("text\n", [witness])  # type: ignore[list-item]


def test_unknown_signer_is_ignored_but_not_sufficient() -> None:
    data = sign_note("hello\n", [OTHER, LOG])
    _, verified = open_note(data, [LOG.verifier()])
    assert [s.name for s in verified] == ["example.com/log"]
    with pytest.raises(NoteError, match="no trusted signature"):
        open_note(sign_note("hello\n", [OTHER]), [LOG.verifier()])


def test_repeated_signature_from_one_key_counts_once() -> None:
    note = parse_note(sign_note("hello\n", [LOG]))
    doubled = Note(note.text, note.signatures * 2).to_bytes()
    _, verified = open_note(doubled, [LOG.verifier()])
    assert len(verified) == 1


def test_bad_repeat_of_a_known_signature_rejects_the_note() -> None:
    note = parse_note(sign_note("hello\n", [LOG]))
    good = note.signatures[0]
    bad = NoteSignature(good.name, good.key_id, bytes(64))
    with pytest.raises(NoteError) as exc:
        open_note(Note(note.text, (good, bad)).to_bytes(), [LOG.verifier()])
    assert _code(exc) == ("untrusted_signature", 403)


def test_two_configured_keys_with_the_same_name_and_id_are_refused() -> None:
    # A real (name, key ID) collision takes ~2^32 key generations; forge one directly.
    impostor = copy.copy(OTHER.verifier())
    object.__setattr__(impostor, "name", LOG.name)
    object.__setattr__(impostor, "key_id", LOG.key_id)
    with pytest.raises(NoteError, match="share the name") as exc:
        open_note(sign_note("hello\n", [LOG]), [LOG.verifier(), impostor])
    assert exc.value.code == "ambiguous_key"


def test_signature_count_is_capped_at_one_hundred() -> None:
    line = parse_note(sign_note("hello\n", [LOG])).signatures[0].line()
    ok = ("hello\n\n" + line * MAX_SIGNATURES).encode()
    assert len(parse_note(ok).signatures) == MAX_SIGNATURES
    with pytest.raises(NoteError, match="more than 100") as exc:
        parse_note(("hello\n\n" + line * (MAX_SIGNATURES + 1)).encode())
    assert exc.value.code == "malformed_note"


def test_text_with_blank_lines_splits_at_the_last_one() -> None:
    text = "first paragraph\n\nsecond paragraph\n\n\n"
    note, _ = open_note(sign_note(text, [LOG]), [LOG.verifier()])
    assert note.text == text


# --- properties --------------------------------------------------------------------------

_name_chars = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="+"
)
names = st.text(_name_chars, min_size=1, max_size=12).filter(lambda n: not n.isspace())
lines = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=30)
texts = st.lists(lines, min_size=1, max_size=6).map(lambda ls: "\n".join(ls) + "\n")
signatures = st.builds(
    NoteSignature, names, st.binary(min_size=4, max_size=4), st.binary(min_size=1, max_size=80)
)
note_ish = st.lists(
    st.sampled_from(["— ", "PeterNeumann", " ", "\n", "\n\n", "x08go", "=", "+", "AAAA", "é"])
).map(lambda parts: "".join(parts).encode())


@given(st.one_of(st.binary(max_size=300), note_ish))
def test_parse_note_accepts_only_what_it_would_write(data: bytes) -> None:
    try:
        note = parse_note(data)
    except NoteError:
        return
    assert note.to_bytes() == data


@given(st.one_of(st.binary(max_size=300), note_ish))
def test_open_note_raises_only_note_error(data: bytes) -> None:
    with contextlib.suppress(NoteError):
        open_note(data, [PETER])


@given(st.text(max_size=120))
def test_key_parsers_raise_only_note_error(text: str) -> None:
    for parse in (parse_vkey, parse_private_key):
        with contextlib.suppress(NoteError):
            parse(text)


@given(texts, st.lists(signatures, min_size=1, max_size=5))
def test_format_then_parse_gives_the_same_note(text: str, sigs: list[NoteSignature]) -> None:
    note = Note(text, tuple(sigs))
    assert parse_note(note.to_bytes()) == note


@settings(deadline=None)
@given(texts, names)
def test_signed_text_opens_unchanged(text: str, name: str) -> None:
    signer = NoteSigner.from_seed(name, hashlib.sha256(name.encode()).digest())
    note, verified = open_note(sign_note(text, [signer]), [signer.verifier()])
    assert note.text == text
    assert verified == list(note.signatures)


@settings(deadline=None)
@given(texts, st.data())
def test_any_tampering_is_rejected(text: str, data: st.DataObject) -> None:
    note = parse_note(sign_note(text, [LOG]))
    sig = note.signatures[0]
    i = data.draw(st.integers(0, len(sig.signature) - 1))
    flipped = bytes([sig.signature[i] ^ 1])
    forged = [
        Note(text + "x\n", note.signatures),
        Note(
            text,
            (
                NoteSignature(
                    sig.name, sig.key_id, sig.signature[:i] + flipped + sig.signature[i + 1 :]
                ),
            ),
        ),
        Note(text, (NoteSignature(sig.name + "x", sig.key_id, sig.signature),)),
        Note(
            text,
            (NoteSignature(sig.name, bytes([sig.key_id[0] ^ 1]) + sig.key_id[1:], sig.signature),),
        ),
    ]
    for bad in forged:
        with pytest.raises(NoteError) as exc:
            open_note(bad.to_bytes(), [LOG.verifier()])
        assert _code(exc) == ("untrusted_signature", 403)
