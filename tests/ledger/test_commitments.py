"""Decision commitments: the pure core (custodes.ledger.commitments)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from custodes.errors import BadRequest
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.commitments import (
    DecisionOpening,
    commit_decision,
    new_salt,
    open_decision,
    seal_decision,
)
from custodes.ledger.errors import EnvelopeError
from custodes.ledger.payloads import (
    DECISION_TYPE,
    CommittedDecision,
    DecisionRecord,
    validate_payload,
)

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(**changes: object) -> DecisionRecord:
    fields: dict[str, object] = {
        "agent": "urn:custodes:gb:agent:a1",
        "action": "buy 10 GBP/EUR",
        "rationale": "within the mandate",
        "counterparties": ["urn:custodes:fr:agent:b2"],
        "decided_at": AT,
        "idempotency_key": "k1",
    } | changes
    return DecisionRecord.model_validate(fields)


def test_the_commitment_is_the_tagged_salted_hash_of_the_canonical_record() -> None:
    salt = base64.urlsafe_b64encode(bytes(16)).rstrip(b"=").decode()
    clear = {"agent": "a", "action": "x"}
    expected = hashlib.sha256(canonical_dumps(["custodes.decision.v1", salt, clear])).hexdigest()
    assert commit_decision(salt, clear) == f"sha256:{expected}"


def test_sealing_keeps_only_public_metadata_in_the_logged_record() -> None:
    committed, opening = seal_decision(record())
    logged = committed.model_dump(mode="json")
    assert set(logged) == {"v", "agent", "kind", "decided_at", "idempotency_key", "commitment"}
    assert "buy" not in str(logged)
    assert "mandate" not in str(logged)
    assert open_decision(committed, opening) == record()


def test_every_record_gets_a_new_salt_of_128_bits() -> None:
    first, second = seal_decision(record())[1], seal_decision(record())[1]
    assert first.salt != second.salt
    assert len(base64.urlsafe_b64decode(new_salt() + "==")) == 16


def test_a_halt_is_committed_with_kind_halt() -> None:
    committed, _ = seal_decision(record(action="halt"))
    assert committed.kind == "halt"


@pytest.mark.parametrize("salt", ["AAAA", "c2hvcnQtc2FsdA", "not base64 at all, though long!"])
def test_a_short_or_malformed_salt_is_refused(salt: str) -> None:
    with pytest.raises(BadRequest) as caught:
        commit_decision(salt, {"agent": "a"})
    assert caught.value.code == "bad_salt"
    assert caught.value.status == 400


def test_an_opening_that_does_not_match_the_commitment_is_refused() -> None:
    committed, opening = seal_decision(record())
    tampered = DecisionOpening(salt=opening.salt, record={**opening.record, "action": "sell"})
    with pytest.raises(BadRequest) as caught:
        open_decision(committed, tampered)
    assert caught.value.code == "commitment_mismatch"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("agent", "urn:custodes:gb:agent:other"),
        ("decided_at", datetime(2027, 1, 1, tzinfo=UTC)),
        ("idempotency_key", "k2"),
        ("kind", "halt"),
    ],
)
def test_metadata_that_differs_from_the_clear_record_is_refused(field: str, value: object) -> None:
    committed, opening = seal_decision(record())
    lying = committed.model_copy(update={field: value})
    with pytest.raises(BadRequest) as caught:
        open_decision(lying, opening)
    assert caught.value.code == "opening_mismatch"
    assert caught.value.detail["fields"] == [field]


def test_both_versions_parse_under_one_payload_type() -> None:
    committed, _ = seal_decision(record())
    v2 = validate_payload(DECISION_TYPE, committed.model_dump_json().encode())
    v1 = validate_payload(DECISION_TYPE, record().model_dump_json().encode())
    assert isinstance(v2, CommittedDecision)
    assert isinstance(v1, DecisionRecord)


def test_a_version_2_record_without_a_commitment_is_invalid() -> None:
    committed, _ = seal_decision(record())
    payload = committed.model_dump(mode="json")
    del payload["commitment"]
    with pytest.raises(EnvelopeError) as caught:
        validate_payload(DECISION_TYPE, canonical_dumps(payload))
    assert caught.value.code == "invalid_payload"
