"""Split-view evidence: what proves a split view, checked against trees built here."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.federation.evidence import (
    Evidence,
    EvidenceError,
    SeenCheckpoint,
    evidence_from_json,
    open_seen,
    pair_key,
    same_size_evidence,
    verify_evidence,
)
from custodes.federation.gossip import compare
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.errors import LedgerError
from custodes.ledger.merkle import NodeReader, consistency_proof, leaf_hash, root_of
from custodes.ledger.note import NoteSigner

ORIGIN = "gb.alliance.test/log"
LOG = NoteSigner.from_seed(ORIGIN, bytes(32))
VKEY = LOG.vkey()


def _leaves(tag: str, count: int) -> list[bytes]:
    return [leaf_hash(f"{tag}{i}".encode()) for i in range(count)]


def _reader(leaves: Sequence[bytes]) -> NodeReader:
    return lambda level, index: root_of(leaves[index << level : (index + 1) << level])


def _seen(leaves: Sequence[bytes], signer: NoteSigner = LOG) -> SeenCheckpoint:
    note = sign_checkpoint(Checkpoint(ORIGIN, len(leaves), root_of(leaves)), signer)
    return open_seen(note, signer.verifier())


def _fork(size: int, at: int) -> list[bytes]:
    """A tree of ``size`` leaves sharing the first ``at`` with ``_leaves("x", size)``."""
    return _leaves("x", size)[:at] + _leaves("fork", size - at)


def _judge(a: Sequence[bytes], b: Sequence[bytes], origin_tree: Sequence[bytes]) -> object:
    def reader_for(size: int) -> NodeReader:
        tree = origin_tree[:size]
        if len(tree) < size:
            raise LedgerError("the origin has no tree that large")
        return _reader(tree)

    return compare(VKEY, _seen(a), _seen(b), reader_for)


def test_same_size_different_roots_is_evidence() -> None:
    evidence = same_size_evidence(VKEY, _seen(_leaves("a", 5)), _seen(_fork(5, 3)))
    verify_evidence(evidence, VKEY)
    assert evidence.case == "same-size"
    assert evidence_from_json(evidence.to_bytes()) == evidence


@pytest.mark.parametrize(
    ("small", "large", "fork_at"), [(3, 8, 2), (4, 7, 0), (8, 9, 7), (1, 2, 0)]
)
def test_a_larger_tree_that_is_not_a_prefix_is_evidence(
    small: int, large: int, fork_at: int
) -> None:
    honest = _leaves("x", large)
    forged = _fork(small, fork_at)
    outcome = _judge(forged, honest, honest)
    assert isinstance(outcome, Evidence)
    assert outcome.case == "not-a-prefix"
    assert outcome.first.size == small
    verify_evidence(evidence_from_json(outcome.to_bytes()), VKEY)


def test_the_log_entry_envelope_verifies_as_well() -> None:
    honest = _leaves("x", 6)
    outcome = _judge(_fork(4, 1), honest, honest)
    assert isinstance(outcome, Evidence)
    envelope = sign_envelope(
        "application/vnd.custodes.misbehaviour+json",
        outcome.to_bytes(),
        [EnvelopeSigner.generate()],
    )
    verify_evidence(evidence_from_json(envelope.to_bytes()), VKEY)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_compare_proves_a_split_exactly_when_the_trees_diverge(
    small: int, large: int, data: st.DataObject
) -> None:
    small, large = sorted((small, large))
    fork_at = data.draw(st.integers(0, small))
    honest = _leaves("x", large)
    outcome = _judge(_fork(small, fork_at), honest, honest)
    if fork_at == small:
        assert outcome is True
    else:
        assert isinstance(outcome, Evidence)
        verify_evidence(outcome, VKEY)


def test_nothing_is_proved_when_the_origin_does_not_serve_the_larger_tree() -> None:
    honest = _leaves("x", 5)
    assert _judge(_fork(3, 1), _fork(7, 1), honest) is False


def test_the_pair_key_does_not_depend_on_the_order() -> None:
    a, b = _seen(_leaves("a", 3)), _seen(_leaves("b", 3))
    assert pair_key(a, b) == pair_key(b, a)
    assert pair_key(a, b) != pair_key(a, _seen(_leaves("c", 3)))


def _bundle(evidence: Evidence, **changes: object) -> bytes:
    return orjson.dumps({**evidence.to_json(), **changes})


def _prefix_evidence() -> Evidence:
    honest = _leaves("x", 9)
    outcome = _judge(_fork(5, 2), honest, honest)
    assert isinstance(outcome, Evidence)
    return outcome


def test_evidence_that_does_not_hold_is_refused() -> None:
    evidence = _prefix_evidence()
    same = same_size_evidence(VKEY, _seen(_leaves("a", 5)), _seen(_fork(5, 3)))
    honest = _leaves("x", 9)
    consistent = Evidence(
        ORIGIN,
        VKEY,
        "not-a-prefix",
        _seen(honest[:5]),
        _seen(honest),
        root_of(honest[:5]),
        tuple(consistency_proof(5, 9, _reader(honest))),
    )
    cases = {
        "same root": _bundle(same, second=same.first.note.decode()),
        "not of the same size": _bundle(same, second=evidence.second.note.decode()),
        "extends the smaller": consistent.to_bytes(),
        "does not lead": _bundle(evidence, proof=[base64.b64encode(bytes(32)).decode()]),
        "smaller tree": _bundle(
            evidence, first=evidence.second.note.decode(), second=evidence.first.note.decode()
        ),
        "no root of the larger": _bundle(evidence, prefix_root=None),
    }
    for reason, document in cases.items():
        with pytest.raises(EvidenceError, match=reason):
            verify_evidence(evidence_from_json(document), VKEY)


def test_notes_not_signed_by_the_log_prove_nothing() -> None:
    impostor = NoteSigner.from_seed(ORIGIN, bytes([1]) * 32)  # same name, another key
    forged = same_size_evidence(
        impostor.vkey(), _seen(_leaves("a", 4), impostor), _seen(_leaves("b", 4), impostor)
    )
    with pytest.raises(EvidenceError, match="not signed by the log"):
        verify_evidence(evidence_from_json(forged.to_bytes()), VKEY)
    other = NoteSigner.from_seed("fr.alliance.test/log", bytes(32))
    with pytest.raises(EvidenceError, match="not the log"):
        verify_evidence(forged, other.vkey())


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"not json", "not a split-view evidence bundle"),
        (b'{"v": 2}', "unknown evidence version"),
        (b'{"v": 1, "case": "weird"}', "unknown evidence case"),
        (b'{"v": 1, "case": "same-size"}', "not a split-view evidence bundle"),
    ],
)
def test_malformed_bundles_are_refused(document: bytes, reason: str) -> None:
    with pytest.raises(EvidenceError, match=reason):
        evidence_from_json(document)
