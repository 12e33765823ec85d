"""Bounded fuzzing of every ledger parser: junk in, only Custodes errors out.

Each parser takes what an attacker can send (signed notes, checkpoints, cosignatures,
witness requests, DSSE envelopes, canonical JSON, tile paths, entry bundles, proofs)
and must either parse it or raise a ``CustodesError`` the API turns into a 4xx: never a
raw ``ValueError``, ``IndexError`` or ``UnicodeDecodeError``, which would be a 500. And
what the ledger writes must parse back to the same thing.

The runs are bounded (a few hundred examples each) and derandomized, without the
example database, so every run tries the same inputs: a failure here is a real one.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.errors import CustodesError
from custodes.ledger.canonical import canonical_dumps, parse_canonical
from custodes.ledger.checkpoint import Checkpoint, open_checkpoint, origin_of, parse_checkpoint
from custodes.ledger.cosignature import (
    CosignatureSigner,
    cosign,
    cosignatures_in,
    parse_cosigner_private_key,
    verify_cosignature,
)
from custodes.ledger.dsse import (
    EnvelopeSigner,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from custodes.ledger.errors import ProofError
from custodes.ledger.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from custodes.ledger.note import (
    NoteSignature,
    NoteSigner,
    open_note,
    parse_note,
    parse_private_key,
    parse_vkey,
    sign_note,
)
from custodes.ledger.payloads import DECISION_TYPE, SIGNER_TYPE, validate_payload
from custodes.ledger.tiles import (
    decode_entry_bundle,
    encode_entry_bundle,
    entries_path,
    hashes_from_tile,
    parse_tile_path,
    tile_path,
)
from custodes.ledger.witness import format_add_checkpoint, parse_add_checkpoint

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

LOG = NoteSigner.from_seed("log.example/fuzz", bytes(range(32)))
WITNESS = CosignatureSigner.from_seed("witness.example", bytes(range(1, 33)))
AGENT = EnvelopeSigner.from_seed(bytes(range(2, 34)))
ROOT = bytes(range(32))
CHECKPOINT_TEXT = Checkpoint(LOG.name, 7, ROOT).to_text()
SIGNED = sign_note(CHECKPOINT_TEXT, [LOG])
COSIGNED = SIGNED + cosign(CHECKPOINT_TEXT, WITNESS, 100).line().encode()


def only_our_errors(parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``parse``; a CustodesError is a fine answer, anything else fails the test."""
    try:
        return parse(*args, **kwargs)
    except CustodesError as error:
        caught = error
    assert caught.message.strip()
    assert 400 <= caught.status < 500, (caught.status, caught.code)
    return None


# --- strategies ---------------------------------------------------------------------------

# Pieces of the formats, so junk often gets past the first check and reaches the deep ones.
_FRAGMENTS = [
    "\n",
    "\n\n",
    "— ",
    " ",
    "+",
    "=",
    "old ",
    "0",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "tile/",
    "entries/",
    "x001/",
    ".p/",
    "\u2014",
    "\ud800",
    "\x00",
    "\r",
    "é",
    LOG.name,
    LOG.vkey(),
    WITNESS.vkey(),
    base64.b64encode(ROOT).decode(),
    base64.b64encode(b"\x01" * 33).decode(),
    CHECKPOINT_TEXT,
    SIGNED.decode(),
    COSIGNED.decode(),
]
fragments = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=12)), max_size=12)
junk_text = st.one_of(st.text(max_size=300), fragments.map("".join))


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


junk_bytes = st.one_of(
    st.binary(max_size=400),
    junk_text.map(_encode),
    st.binary(max_size=40).map(lambda tail: SIGNED + tail),
    st.integers(0, len(COSIGNED)).map(lambda cut: COSIGNED[:cut]),
    st.tuples(st.integers(0, len(COSIGNED) - 1), st.integers(0, 255)).map(
        lambda at: COSIGNED[: at[0]] + bytes([at[1]]) + COSIGNED[at[0] + 1 :]
    ),
)

# Python strings may hold lone surrogates, which no UTF-8 JSON text can carry.
strings = st.text(max_size=20) | st.sampled_from(["\ud800", "a\udfff", "\U0001f600"])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | strings,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner),
    max_leaves=12,
)
b64_texts = st.one_of(st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()), junk_text)
VALID_ENVELOPE = sign_envelope(
    DECISION_TYPE,
    canonical_dumps(
        {
            "v": 1,
            "agent": "urn:custodes:zz:agent:fuzz",
            "action": "trade",
            "rationale": "within the mandate",
            "counterparties": [],
            "decided_at": "2025-01-02T03:04:05Z",
        }
    ),
    [AGENT],
).to_json()


def _replaced(change: tuple[str, Any]) -> dict[str, Any]:
    """The valid envelope with one member (or its signature's) set to ``value``."""
    where, value = change
    envelope = {**VALID_ENVELOPE, "signatures": [dict(VALID_ENVELOPE["signatures"][0])]}
    if where in ("keyid", "sig"):
        envelope["signatures"][0][where] = value
    else:
        envelope[where] = value
    return envelope


payload_texts = st.one_of(
    json_values.map(lambda v: only_our_errors(canonical_dumps, v) or b"null"),
    st.dictionaries(st.sampled_from(["v", "agent", "action", "decided_at", "keyid"]), json_values)
    .map(lambda d: {**orjson.loads(base64.b64decode(VALID_ENVELOPE["payload"])), **d})
    .map(lambda d: only_our_errors(canonical_dumps, d) or b"{}"),
).map(lambda raw: base64.b64encode(raw).decode())
one_member_changed = st.tuples(
    st.sampled_from(["payload", "payloadType", "keyid", "sig"]),
    st.one_of(b64_texts, payload_texts, json_values),
).map(_replaced)
envelope_like = one_member_changed | st.fixed_dictionaries(
    {
        "payload": st.one_of(b64_texts, json_values),
        "payloadType": st.one_of(st.sampled_from([DECISION_TYPE, SIGNER_TYPE]), json_values),
        "signatures": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {"keyid": st.one_of(st.just(AGENT.keyid), json_values), "sig": b64_texts}
                ),
                max_size=3,
            ),
        ),
    }
)
hashes = st.binary(min_size=32, max_size=32)
junk_hashes = st.one_of(hashes, st.binary(max_size=40))
sizes = st.one_of(st.integers(-5, 300), st.integers(-(2**70), 2**70))


# --- signed notes, checkpoints, keys --------------------------------------------------------


@FUZZ
@given(data=junk_bytes)
def test_signed_notes_parse_or_raise_ours(data: bytes) -> None:
    only_our_errors(parse_note, data)
    only_our_errors(open_note, data, [LOG.verifier()])
    only_our_errors(origin_of, data)


@FUZZ
@given(data=junk_bytes)
def test_signed_checkpoints_and_cosignatures_open_or_raise_ours(data: bytes) -> None:
    opened = only_our_errors(open_checkpoint, data, [LOG.verifier()])
    if opened is not None:
        only_our_errors(cosignatures_in, opened[1], [WITNESS.verifier()], now=200)


@FUZZ
@given(text=junk_text)
def test_checkpoint_text_parses_or_raises_ours(text: str) -> None:
    only_our_errors(parse_checkpoint, text)


@FUZZ
@given(text=junk_text)
def test_keys_parse_or_raise_ours(text: str) -> None:
    only_our_errors(parse_vkey, text)
    only_our_errors(parse_private_key, text)
    only_our_errors(parse_cosigner_private_key, text)
    only_our_errors(parse_private_key, "PRIVATE+KEY+" + text)


@FUZZ
@given(key_id=st.binary(max_size=6), signature=st.binary(max_size=90), text=junk_text, now=sizes)
def test_cosignature_lines_verify_or_raise_ours(
    key_id: bytes, signature: bytes, text: str, now: int
) -> None:
    verifier = WITNESS.verifier()
    line = only_our_errors(NoteSignature, WITNESS.name, key_id, signature)
    if line is not None:
        only_our_errors(verify_cosignature, CHECKPOINT_TEXT, line, verifier, now=now)
    same_key = NoteSignature(WITNESS.name, verifier.key_id, signature or b"\x00")
    only_our_errors(verify_cosignature, text, same_key, verifier, now=now)


@FUZZ
@given(body=junk_bytes, old=st.text(max_size=30))
def test_witness_requests_parse_or_raise_ours(body: bytes, old: str) -> None:
    only_our_errors(parse_add_checkpoint, body)
    only_our_errors(parse_add_checkpoint, _encode(f"old {old}\n\n") + SIGNED)


@pytest.mark.parametrize("old", ["9" * 5000, "9" * 21, str(2**64)], ids=["5000", "21", "2^64"])
def test_a_witness_request_with_an_old_size_beyond_uint64_is_a_400(old: str) -> None:
    with pytest.raises(CustodesError) as caught:
        parse_add_checkpoint(f"old {old}\n\n".encode() + SIGNED)
    assert (caught.value.status, caught.value.code) == (400, "malformed_request")


@FUZZ
@given(size=st.integers(0, 2**64 - 1), root=hashes, extensions=st.lists(junk_text, max_size=3))
def test_checkpoints_round_trip(size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = only_our_errors(Checkpoint, LOG.name, size, root, tuple(extensions))
    if checkpoint is None:
        return
    note = sign_note(checkpoint.to_text(), [LOG])
    opened, parsed_note, verified = open_checkpoint(note, [LOG.verifier()])
    assert opened == checkpoint
    assert parsed_note.to_bytes() == note
    assert [s.name for s in verified] == [LOG.name]
    timestamp = 1_700_000_000
    line = cosign(checkpoint.to_text(), WITNESS, timestamp)
    cosigned = parse_note(note + line.line().encode())
    assert cosignatures_in(cosigned, [WITNESS.verifier()], now=timestamp) == [
        (WITNESS.verifier(), timestamp)
    ]


@FUZZ
@given(old=st.integers(0, 2**64 - 1), proof=st.lists(hashes, max_size=63))
def test_witness_requests_round_trip(old: int, proof: list[bytes]) -> None:
    request = parse_add_checkpoint(format_add_checkpoint(old, proof, SIGNED))
    assert (request.old_size, list(request.proof), request.checkpoint) == (old, proof, SIGNED)


# --- envelopes and canonical JSON ----------------------------------------------------------


@FUZZ
@given(obj=st.one_of(envelope_like, json_values))
def test_envelopes_parse_and_verify_or_raise_ours(obj: Any) -> None:
    envelope = only_our_errors(parse_envelope, obj)
    if envelope is None:
        return
    only_our_errors(verify_envelope, envelope, {AGENT.keyid: AGENT.public_key}.get)
    only_our_errors(validate_payload, envelope.payload_type, envelope.payload)
    only_our_errors(envelope.to_bytes)


@FUZZ
@given(payload_type=strings.filter(bool), payload=st.binary(max_size=200))
def test_envelopes_round_trip(payload_type: str, payload: bytes) -> None:
    envelope = only_our_errors(sign_envelope, payload_type, payload, [AGENT])
    if envelope is None:
        return
    data = only_our_errors(envelope.to_bytes)
    if data is None:
        return
    parsed = parse_envelope(parse_canonical(data))
    assert parsed == envelope
    assert verify_envelope(parsed, {AGENT.keyid: AGENT.public_key}.get) == [AGENT.keyid]


@FUZZ
@given(data=junk_bytes)
def test_canonical_json_parses_or_raises_ours(data: bytes) -> None:
    only_our_errors(parse_canonical, data)


@FUZZ
@given(value=json_values)
def test_canonical_json_is_written_and_read_back_or_refused_as_ours(value: Any) -> None:
    data = only_our_errors(canonical_dumps, value)
    if data is None:
        return
    # Not always readable: an integral float from 2^53 to 1e21 is written as digits,
    # which read back as an integer outside RFC 8785's safe range (refused, as ours).
    parsed = only_our_errors(parse_canonical, data)
    if parsed is not None:
        assert canonical_dumps(parsed) == data


# --- tiles and proofs -----------------------------------------------------------------------


@FUZZ
@given(path=junk_text)
def test_tile_paths_parse_or_raise_ours(path: str) -> None:
    only_our_errors(parse_tile_path, path)
    only_our_errors(parse_tile_path, "tile/" + path)


@FUZZ
@given(level=st.integers(-2, 70), index=sizes, width=st.integers(-2, 300))
def test_tile_paths_round_trip(level: int, index: int, width: int) -> None:
    path = only_our_errors(tile_path, level, index, width)
    if path is not None:
        assert parse_tile_path(path).path == path
    bundle = only_our_errors(entries_path, index, width)
    if bundle is not None:
        assert parse_tile_path(bundle).path == bundle


@FUZZ
@given(data=junk_bytes)
def test_tiles_and_bundles_decode_or_raise_ours(data: bytes) -> None:
    only_our_errors(hashes_from_tile, data)
    only_our_errors(decode_entry_bundle, data)


@FUZZ
@given(entries=st.lists(st.binary(max_size=300), max_size=20))
def test_entry_bundles_round_trip(entries: list[bytes]) -> None:
    assert decode_entry_bundle(encode_entry_bundle(entries)) == entries


@FUZZ
@given(
    leaf=junk_hashes,
    index=sizes,
    size=sizes,
    proof=st.lists(junk_hashes, max_size=70),
    root=junk_hashes,
)
def test_inclusion_proofs_of_junk_raise_ours(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    only_our_errors(verify_inclusion, leaf, index, size, proof, root)


@FUZZ
@given(
    size1=sizes,
    size2=sizes,
    proof=st.lists(junk_hashes, max_size=70),
    root1=junk_hashes,
    root2=junk_hashes,
)
def test_consistency_proofs_of_junk_raise_ours(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    only_our_errors(verify_consistency, size1, size2, proof, root1, root2)


def _reader(leaves: list[bytes]) -> Callable[[int, int], bytes]:
    return lambda level, index: root_of(leaves[index << level : (index + 1) << level])


@FUZZ
@given(
    count=st.integers(1, 40),
    data=st.data(),
)
def test_real_proofs_verify_and_any_change_is_refused_as_ours(count: int, data: Any) -> None:
    leaves = [leaf_hash(n.to_bytes(2, "big")) for n in range(count)]
    root = root_of(leaves)
    index = data.draw(st.integers(0, count - 1))
    proof = inclusion_proof(index, count, _reader(leaves))
    verify_inclusion(leaves[index], index, count, proof, root)
    size1 = data.draw(st.integers(1, count))
    consistency = consistency_proof(size1, count, _reader(leaves))
    verify_consistency(size1, count, consistency, root_of(leaves[:size1]), root)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:at], bytes(32), *proof[at + 1 :]]
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, count, bad, root)
