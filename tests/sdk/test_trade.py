"""Decision refs (what they change and what they do not) and stitching two logs."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest

from custodes.errors import BadRequest
from custodes.ledger.commitments import (
    DecisionOpening,
    commit_decision,
    open_record,
    seal_decision,
)
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.payloads import CommittedDecision, DecisionRecord, EntryRef
from custodes.sdk.decisions import sign_committed_decision, sign_decision
from custodes.sdk.trade import LinkedEntry, linked_entry, stitch

KEY = EnvelopeSigner.from_seed(b"k" * 32)
AGENT = "urn:custodes:gb:agent:buyer"
AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
OFFER = EntryRef(origin="gb.example/log", index=3, leaf_hash="ab" * 32)


def test_a_record_without_refs_is_written_exactly_as_before_refs_existed() -> None:
    envelope = sign_decision(
        KEY, AGENT, "buy", "cheapest", ["urn:custodes:fr:agent:s"], decided_at=AT
    )
    assert envelope.payload == (
        b'{"v":1,"agent":"urn:custodes:gb:agent:buyer","action":"buy","rationale":"cheapest",'
        b'"counterparties":["urn:custodes:fr:agent:s"],"decided_at":"2025-01-02T03:04:05Z"}'
    )


def test_a_committed_record_without_refs_commits_and_publishes_as_before() -> None:
    opened = sign_committed_decision(KEY, AGENT, "buy", "cheapest", decided_at=AT)
    public = orjson.loads(opened.envelope.payload)
    assert set(public) == {"v", "agent", "kind", "decided_at", "commitment"}
    assert "refs" not in opened.opening.record
    expected = commit_decision(
        opened.opening.salt,
        {
            "v": 1,
            "agent": AGENT,
            "action": "buy",
            "rationale": "cheapest",
            "counterparties": [],
            "decided_at": "2025-01-02T03:04:05Z",
        },
    )
    assert public["commitment"] == expected


def test_refs_are_in_the_clear_record_and_public_in_the_committed_one() -> None:
    opened = sign_committed_decision(KEY, AGENT, "trade_accept", "100 at 3.2", refs=[OFFER])
    public = CommittedDecision.model_validate_json(opened.envelope.payload)
    assert public.refs == (OFFER,)
    assert opened.opening.record["refs"] == [OFFER.model_dump()]
    record, _ = open_record(public, opened.opening)
    assert record.refs == (OFFER,)


def test_metadata_whose_refs_differ_from_the_clear_record_is_refused() -> None:
    record = DecisionRecord(agent=AGENT, action="trade_accept", rationale="x", decided_at=AT)
    meta, opening = seal_decision(record.model_copy(update={"refs": (OFFER,)}))
    bare = DecisionOpening(salt=opening.salt, record={**opening.record})
    other = meta.model_copy(update={"refs": (OFFER.model_copy(update={"index": 4}),)})
    with pytest.raises(BadRequest, match="refs"):
        open_record(other, bare)


def _entry(origin: str, index: int, refs: list[EntryRef]) -> tuple[LinkedEntry, bytes]:
    envelope = sign_decision(KEY, AGENT, "trade", "terms", refs=refs)
    return linked_entry(origin, index, envelope.to_bytes()), envelope.to_bytes()


def test_stitch_resolves_each_ref_by_origin_index_and_exact_leaf_hash() -> None:
    offer, data = _entry("gb.example/log", 3, [])
    assert offer.ref.leaf_hash == leaf_hash(data).hex()
    accept, _ = _entry("fr.example/log", 9, [offer.ref])
    wrong = offer.ref.model_copy(update={"leaf_hash": "cd" * 32})
    forged, _ = _entry("fr.example/log", 10, [wrong])
    links = stitch([offer], [accept, forged])
    assert [(link.source.index, link.target.index, link.found) for link in links] == [
        (9, 3, True),
        (10, 3, False),
    ]


def test_linked_entry_reads_the_json_the_api_serves_and_refuses_other_entries() -> None:
    envelope = sign_decision(KEY, AGENT, "trade", "terms", refs=[OFFER])
    served = orjson.loads(envelope.to_bytes())
    read = linked_entry("gb.example/log", 5, served)
    assert (read.refs, read.action, read.agent) == ((OFFER,), "trade", AGENT)
    served["payloadType"] = "application/vnd.custodes.lease+json"
    with pytest.raises(BadRequest):
        linked_entry("gb.example/log", 5, served)
    with pytest.raises(BadRequest):
        linked_entry("gb.example/log", 5, base64.b64encode(b"nonsense"))
