"""verify_bundle: a genuine bundle verifies offline; every tampering fails with its reason."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import pytest

from custodes.federation.roster import found_roster
from custodes.forensics.bundle import BundleError
from custodes.forensics.models import Timeline
from custodes.forensics.verify import verify_bundle
from custodes.ledger.checkpoint import parse_checkpoint
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.note import Note, NoteSigner, parse_note, sign_note
from tests.forensics.synthetic import START, SyntheticAlliance, synthetic_alliance

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def alliance() -> SyntheticAlliance:
    return synthetic_alliance(40)


@pytest.fixture(scope="module")
def genuine(alliance: SyntheticAlliance) -> Doc:
    return alliance.timeline().model_dump(mode="json")


def _tampered(genuine: Doc, change: Callable[[Doc], None]) -> Timeline:
    doc = copy.deepcopy(genuine)
    change(doc)
    return Timeline.model_validate(doc)


def _fails(genuine: Doc, change: Callable[[Doc], None], *reason: str) -> str:
    with pytest.raises(BundleError) as caught:
        verify_bundle(_tampered(genuine, change))
    message = caught.value.message
    for part in reason:
        assert part in message, message
    assert caught.value.code == "bundle_invalid"
    return message


def _event(doc: Doc, kind: str = "decision", node: str | None = None) -> Doc:
    return next(
        e for e in doc["events"] if e["kind"] == kind and (node is None or e["node"] == node)
    )


def _committed(doc: Doc) -> Doc:
    return next(e for e in doc["events"] if e["clear"] and "commitment" in e["record"])


def test_a_genuine_bundle_verifies_with_its_counts(genuine: Doc) -> None:
    verified = verify_bundle(Timeline.model_validate(genuine))
    assert verified.events == 40
    assert verified.nodes == ("CA", "DE", "FR", "GB")
    assert verified.checkpoints == 4
    assert verified.cosignatures == 16  # every member's witness on every checkpoint
    assert verified.registry == 8
    assert verified.opened == sum(
        1 for e in genuine["events"] if e["clear"] and "commitment" in e["record"]
    )
    assert verified.summary().startswith("verified: 40 events from 4 members")


def test_the_public_view_without_clear_records_verifies(alliance: SyntheticAlliance) -> None:
    verified = verify_bundle(alliance.timeline(clear=False))
    assert (verified.events, verified.opened) == (40, 0)


def _flip_data_byte(doc: Doc) -> Doc:
    event = _event(doc)
    raw = bytearray(base64.b64decode(event["data"]))
    raw[len(raw) // 2] ^= 0x01
    event["data"] = base64.b64encode(bytes(raw)).decode()
    return event


def test_a_flipped_data_byte_fails_on_the_leaf_hash(genuine: Doc) -> None:
    key = "{node}:{index}".format(**_event(genuine))
    message = _fails(genuine, _flip_data_byte, "is not the hash of the entry's data")
    assert message.startswith(key + ":")


def test_flipped_data_with_its_leaf_hash_recomputed_fails_the_proof(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        event = _flip_data_byte(doc)
        event["leaf_hash"] = leaf_hash(base64.b64decode(event["data"])).hex()

    _fails(genuine, change, "inclusion proof does not lead to the checkpoint's root")


def test_a_flipped_proof_hash_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        event = _event(doc)
        first = bytearray(bytes.fromhex(event["proof"][0]))
        first[0] ^= 0x80
        event["proof"][0] = first.hex()

    _fails(genuine, change, "inclusion proof does not lead to the checkpoint's root")


def test_a_shortened_proof_fails(genuine: Doc) -> None:
    _fails(genuine, lambda d: _event(d)["proof"].pop(), "inclusion proof is malformed", "3 hashes")


def test_a_replaced_leaf_hash_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _event(doc)["leaf_hash"] = "ab" * 32

    _fails(genuine, change, "leaf hash abab", "is not the hash of the entry's data")


def test_a_wrong_tree_size_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _event(doc)["tree_size"] += 1

    _fails(genuine, change, "proven against tree size")


def test_data_that_is_not_base64_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _event(doc)["data"] = "not base64!"

    _fails(genuine, change, "is not base64")


def test_a_record_that_is_not_the_logged_payload_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _event(doc, "order")["record"]["reason"] = "a kinder reason"

    _fails(genuine, change, "the record shown is not the payload the log holds")


def test_a_changed_payload_type_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _event(doc)["payload_type"] = "application/vnd.custodes.registry+json"

    _fails(genuine, change, "payloadType")


def test_a_halt_shown_as_a_decision_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _event(doc, "halt")["kind"] = "decision"

    _fails(genuine, change, "shown as a decision, but the logged entry is a halt")


def test_a_lift_shown_as_an_order_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _event(doc, "lift")["kind"] = "order"

    _fails(genuine, change, "shown as a order, but the logged entry is a lift")


def test_a_time_other_than_the_records_own_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _event(doc, "order")["at"] = "2026-11-30T08:00:00Z"

    _fails(genuine, change, "its time 2026-11-30T08:00:00+00:00 is not the at its record claims")


def test_a_changed_clear_rationale_fails_against_the_commitment(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _committed(doc)["clear"]["record"]["rationale"] = "it seemed wise"

    _fails(genuine, change, "does not open the logged commitment")


def test_a_changed_salt_fails_against_the_commitment(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        _committed(doc)["clear"]["salt"] = "A" * 22

    _fails(genuine, change, "does not open the logged commitment")


def test_a_clear_record_beside_a_record_logged_in_clear_must_equal_it(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        event = next(e for e in doc["events"] if "rationale" in e["record"])
        record = dict(event["record"], rationale="rewritten")
        event["clear"] = {"salt": "x", "record": record}

    _fails(genuine, change, "differs from the record logged in clear")


def test_two_events_of_one_log_out_of_index_order_fail(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        gb = [i for i, e in enumerate(doc["events"]) if e["node"] == "GB"]
        a, b = gb[1], gb[2]
        doc["events"][a], doc["events"][b] = doc["events"][b], doc["events"][a]

    _fails(genuine, change, "but the log sequenced it first")


def test_an_event_moved_before_the_entry_it_refers_to_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        doc["edges"] = []  # the record's own refs still say so
        i = next(i for i, e in enumerate(doc["events"]) if e["refs"])
        doc["events"][i - 1], doc["events"][i] = doc["events"][i], doc["events"][i - 1]

    _fails(genuine, change, "is placed before", "which it refers to")


def test_an_edge_the_order_does_not_honour_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        first, last = doc["events"][0], doc["events"][-1]
        doc["edges"].append(
            [f"{first['node']}:{first['index']}", f"{last['node']}:{last['index']}"]
        )

    _fails(genuine, change, "is placed before")


def test_an_edge_to_an_event_not_in_the_bundle_fails(genuine: Doc) -> None:
    _fails(genuine, lambda d: d["edges"].append(["GB:1", "FR:9999"]), "does not hold")


def test_a_ref_naming_another_leaf_hash_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        event = next(e for e in doc["events"] if e["refs"])
        event["refs"][0]["leaf_hash"] = "cd" * 32

    _fails(genuine, change, "names a different leaf hash")


def test_an_event_listed_twice_fails(genuine: Doc) -> None:
    _fails(genuine, lambda d: d["events"].append(d["events"][-1]), "is listed twice")


def _drop_cosignatures(doc: Doc, node: str, keep: int) -> None:
    note = parse_note(doc["checkpoints"][node].encode())
    log_sig, cosigs = note.signatures[0], note.signatures[1:]
    doc["checkpoints"][node] = Note(note.text, (log_sig, *cosigs[:keep])).to_bytes().decode()


def test_a_checkpoint_below_quorum_fails(genuine: Doc) -> None:
    message = _fails(
        genuine, lambda d: _drop_cosignatures(d, "FR", 2), "cosigned by 2 members", "quorum is 3"
    )
    assert message.startswith("FR:")


def test_a_checkpoint_at_quorum_verifies(genuine: Doc) -> None:
    verified = verify_bundle(_tampered(genuine, lambda d: _drop_cosignatures(d, "FR", 3)))
    assert verified.cosignatures == 15


def test_a_checkpoint_signed_by_an_unknown_key_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        text = parse_note(doc["checkpoints"]["DE"].encode()).text
        impostor = NoteSigner.generate("de.alliance.test/log")
        doc["checkpoints"]["DE"] = sign_note(text, [impostor]).decode()

    _fails(genuine, change, "DE: checkpoint is not signed by DE's log key")


def test_a_checkpoint_whose_root_was_changed_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        note = parse_note(doc["checkpoints"]["GB"].encode())
        checkpoint = parse_checkpoint(note.text)
        forged = checkpoint.to_text().replace(str(checkpoint.size), str(checkpoint.size + 1), 1)
        doc["checkpoints"]["GB"] = Note(forged, note.signatures).to_bytes().decode()

    _fails(genuine, change, "GB: checkpoint is not signed by GB's log key")


def test_an_event_whose_node_has_no_checkpoint_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        del doc["checkpoints"]["CA"], doc["origins"]["CA"]

    _fails(genuine, change, "holds no checkpoint of CA's log")


def test_an_origin_other_than_the_rosters_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        doc["origins"]["GB"] = "evil.example/log"

    _fails(genuine, change, "GB: origin", "is not the roster's origin")


def test_a_tampered_registry_state_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        doc["registry"][0]["event"]["record"]["agent"]["risk_tier"] = "minimal"

    _fails(genuine, change, "the record shown is not the payload the log holds")


def _corrupt(signature: Doc) -> None:
    sig = bytearray(bytes.fromhex(signature["sig"]))
    sig[5] ^= 0x10
    signature["sig"] = sig.hex()


def test_roster_signatures_below_threshold_fail(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        for signature in doc["roster"]["signatures"][:2]:
            _corrupt(signature)

    _fails(genuine, change, "roster: version 1 has 2 valid signatures", "it needs 3")


def test_a_roster_whose_parties_were_changed_fails(genuine: Doc) -> None:
    def change(doc: Doc) -> None:
        doc["roster"]["signed"]["x-custodes-roster"]["alliance"] = "Another alliance"

    _fails(genuine, change, "roster: version 1 has 0 valid signatures")


def test_a_malformed_roster_fails(genuine: Doc) -> None:
    _fails(genuine, lambda d: d["roster"].pop("signatures"), "roster:")


def test_a_trusted_roster_must_be_the_bundles(alliance: SyntheticAlliance, genuine: Doc) -> None:
    timeline = Timeline.model_validate(genuine)
    assert verify_bundle(timeline, trusted=alliance.roster).roster_version == 1
    parties = [m.party() for m in alliance.members.values()]
    keys = [EnvelopeSigner.generate() for _ in parties]
    parties = [
        p.model_copy(update={"roster_key": base64.b64encode(k.public_key).decode()})
        for p, k in zip(parties, keys, strict=True)
    ]
    other = found_roster("Another alliance", parties, keys, expires=START.replace(year=2027))
    with pytest.raises(BundleError, match="neither the trusted roster"):
        verify_bundle(timeline, trusted=other)
