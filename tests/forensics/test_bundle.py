"""The bundle file: canonical JSON written atomically, read back exactly, refused when bad."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
import rfc8785

from custodes.forensics.bundle import (
    BundleError,
    bundle_bytes,
    read_bundle,
    tlog_proof,
    write_bundle,
)
from custodes.forensics.models import Timeline
from custodes.forensics.verify import verify_bundle
from custodes.ledger.checkpoint import parse_checkpoint
from custodes.ledger.merkle import leaf_hash, verify_inclusion
from custodes.ledger.note import parse_note
from tests.forensics.synthetic import synthetic_timeline


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    return synthetic_timeline(24)


def test_a_bundle_round_trips_and_still_verifies(timeline: Timeline, tmp_path: Path) -> None:
    path = write_bundle(timeline, tmp_path / "bundle.json")
    back = read_bundle(path)
    assert back == timeline
    assert verify_bundle(back).events == 24
    assert read_bundle(path.read_bytes()) == timeline
    assert read_bundle(str(path)) == timeline


def test_the_file_is_rfc8785_canonical_json(timeline: Timeline, tmp_path: Path) -> None:
    data = write_bundle(timeline, tmp_path / "bundle.json").read_bytes()
    assert data == bytes(rfc8785.dumps(orjson.loads(data)))  # the reference encoder agrees
    assert data == bundle_bytes(timeline)
    assert b'"bound_s":0.5' in data  # the float went through the JCS number form


def test_writing_leaves_only_the_bundle_and_replaces_an_older_one(
    timeline: Timeline, tmp_path: Path
) -> None:
    target = tmp_path / "bundle.json"
    target.write_text("an older bundle")
    write_bundle(timeline, target)
    write_bundle(timeline, target)
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.json"]
    assert read_bundle(target) == timeline


def test_a_file_that_is_not_json_is_refused() -> None:
    with pytest.raises(BundleError, match="the bundle is not JSON") as caught:
        read_bundle(b"{not json")
    assert caught.value.code == "bundle_invalid"


def test_a_json_value_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(BundleError, match="not a JSON object"):
        read_bundle(b"[1, 2]")


def test_another_format_is_refused_by_name(timeline: Timeline) -> None:
    doc = timeline.model_dump(mode="json")
    doc["format"] = "custodes.forensics.bundle.v9"
    with pytest.raises(BundleError, match=r"bundle\.v9") as caught:
        read_bundle(orjson.dumps(doc))
    assert caught.value.code == "bundle_format"


def test_a_malformed_field_is_named(timeline: Timeline) -> None:
    doc = timeline.model_dump(mode="json")
    doc["events"][3]["leaf_hash"] = "not hex"
    with pytest.raises(BundleError, match=r"malformed at events\.3\.leaf_hash"):
        read_bundle(orjson.dumps(doc))


def test_an_unknown_field_is_refused(timeline: Timeline) -> None:
    doc = timeline.model_dump(mode="json")
    doc["trust_me"] = True
    with pytest.raises(BundleError, match="malformed at trust_me"):
        read_bundle(orjson.dumps(doc))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="cannot read the bundle") as caught:
        read_bundle(tmp_path / "absent.json")
    assert caught.value.code == "bundle_unreadable"


def test_an_events_tlog_proof_verifies_with_the_merkle_core(timeline: Timeline) -> None:
    event = timeline.events[7]
    note = timeline.checkpoints[event.node]
    text = tlog_proof(event, note)
    head, _, checkpoint_note = text.partition("\n\n")
    lines = head.split("\n")
    assert lines[:2] == ["c2sp.org/tlog-proof@v1", f"index {event.index}"]
    proof = [base64.b64decode(line) for line in lines[2:]]
    assert checkpoint_note == note
    checkpoint = parse_checkpoint(parse_note(checkpoint_note.encode()).text)
    leaf = leaf_hash(base64.b64decode(event.data))
    verify_inclusion(leaf, event.index, checkpoint.size, proof, checkpoint.root_hash)
