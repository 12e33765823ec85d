"""DSSE v1: PAE exactly per the spec, envelope shape, signature rules."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.ledger.dsse import (
    EnvelopeSigner,
    key_thumbprint,
    pae,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from custodes.ledger.errors import EnvelopeError


def test_pae_matches_the_spec_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_signed_envelope_round_trips_and_verifies(agent: EnvelopeSigner) -> None:
    envelope = sign_envelope("application/x", b"{}", [agent])
    parsed = parse_envelope(envelope.to_json())
    assert parsed == envelope
    keys = {agent.keyid: agent.public_key}
    assert verify_envelope(parsed, keys.get) == [agent.keyid]
    assert agent.keyid == key_thumbprint(agent.public_key)


def test_tampered_payload_is_a_bad_signature(agent: EnvelopeSigner) -> None:
    obj = sign_envelope("application/x", b'{"a":1}', [agent]).to_json()
    obj["payload"] = base64.b64encode(b'{"a":2}').decode()
    with pytest.raises(EnvelopeError) as caught:
        verify_envelope(parse_envelope(obj), {agent.keyid: agent.public_key}.get)
    assert caught.value.code == "bad_signature"


def test_changed_payload_type_is_a_bad_signature(agent: EnvelopeSigner) -> None:
    obj = sign_envelope("application/x", b"{}", [agent]).to_json()
    obj["payloadType"] = "application/y"
    with pytest.raises(EnvelopeError, match="does not verify"):
        verify_envelope(parse_envelope(obj), {agent.keyid: agent.public_key}.get)


def test_unknown_signers_alone_are_refused(agent: EnvelopeSigner) -> None:
    envelope = sign_envelope("application/x", b"{}", [agent])
    with pytest.raises(EnvelopeError) as caught:
        verify_envelope(envelope, {}.get)
    assert (caught.value.code, caught.value.status) == ("unknown_signer", 403)


def test_an_unknown_cosigner_is_ignored_but_a_bad_known_one_rejects(agent: EnvelopeSigner) -> None:
    stranger = EnvelopeSigner.generate()
    envelope = sign_envelope("application/x", b"{}", [stranger, agent])
    assert verify_envelope(envelope, {agent.keyid: agent.public_key}.get) == [agent.keyid]
    wrong_key = {agent.keyid: stranger.public_key, stranger.keyid: stranger.public_key}
    with pytest.raises(EnvelopeError, match="does not verify"):
        verify_envelope(envelope, wrong_key.get)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.pop("payload"),
        lambda o: o.update(extra=1),
        lambda o: o.update(signatures=[]),
        lambda o: o.update(signatures=[{"keyid": "k", "sig": "AA=="}] * 17),
        lambda o: o.update(signatures=[{"sig": "AA=="}]),
        lambda o: o.update(payloadType=""),
        lambda o: o.update(payload="not base64!"),
        lambda o: o.update(payload=o["payload"].rstrip("=")),
    ],
)
def test_malformed_envelopes_are_refused(agent: EnvelopeSigner, mutate: object) -> None:
    obj = sign_envelope("application/x", b"{}", [agent]).to_json()
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(EnvelopeError):
        parse_envelope(obj)


def test_url_safe_base64_is_not_canonical(agent: EnvelopeSigner) -> None:
    payload = bytes([0xFB, 0xFF])  # standard base64 "+/8=", URL-safe "-_8="
    obj = sign_envelope("application/x", payload, [agent]).to_json()
    obj["payload"] = base64.urlsafe_b64encode(payload).decode()
    with pytest.raises(EnvelopeError):
        parse_envelope(obj)


_SIG = {"keyid": "k", "sig": base64.b64encode(bytes(64)).decode()}


def _reference_b64(value: str) -> bytes | str:
    """The field decoding as it was before its fast path: bytes, or the refusal's code."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "invalid_envelope"
    return raw if base64.b64encode(raw).decode() == value else "non_canonical_json"


@settings(max_examples=400, derandomize=True, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        st.text(alphabet="ABCQRSabz09+/=-_ \n", max_size=12),
        st.text(max_size=6),
    )
)
def test_payload_decoding_accepts_and_refuses_as_before(value: str) -> None:
    expected = _reference_b64(value)
    obj = {"payload": value, "payloadType": "application/x", "signatures": [_SIG]}
    try:
        got: bytes | str = parse_envelope(obj).payload
    except EnvelopeError as exc:
        got = exc.code
    assert got == expected
