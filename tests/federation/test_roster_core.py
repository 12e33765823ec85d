"""The roster chain: genesis by every founder, later versions by a quorum, in sequence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import (
    RosterError,
    build_roster,
    found_roster,
    quorum_of,
    sign_roster,
    verify_chain,
    verify_genesis,
    verify_next,
)

EXPIRES = datetime.now(UTC) + timedelta(days=365)
CODES = {"GB": "member", "FR": "member", "DE": "member", "CA": "member", "AU": "partner"}


@pytest.fixture
def alliance(tmp_path: Path):
    parties = [
        node_party(
            tmp_path / c,
            code=c,
            name=c,
            status=s,  # type: ignore[arg-type]
            urls=[f"http://127.0.0.1:{9000 + i}"],
            origin=f"{c.lower()}.test/log",
        )
        for i, (c, s) in enumerate(CODES.items())
    ]
    votes = {c: roster_signer(tmp_path / c) for c, s in CODES.items() if s == "member"}
    return parties, votes


def test_quorum_is_more_than_two_thirds() -> None:
    assert [quorum_of(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 3, 3, 4, 5]


def test_genesis_needs_every_founder(alliance) -> None:
    parties, votes = alliance
    roster = found_roster("test", parties, votes.values(), expires=EXPIRES)
    assert roster.version == 1
    assert roster.threshold == 3
    assert len(roster.root_keys) == 4  # the partner has no vote
    three = [v for c, v in votes.items() if c != "CA"]
    with pytest.raises(RosterError, match="missing: CA") as err:
        found_roster("test", parties, three, expires=EXPIRES)
    assert err.value.code == "roster_quorum"


def _next(roster, votes, codes, change=None):
    body = roster.body
    if change:
        body = body.model_copy(update={"parties": change(list(body.parties))})
    doc = build_roster(body, version=roster.version + 1, expires=EXPIRES)
    for code in codes:
        doc = sign_roster(doc, votes[code])
    return doc


def test_later_versions_need_a_quorum_of_old_and_new(alliance) -> None:
    parties, votes = alliance
    genesis = found_roster("test", parties, votes.values(), expires=EXPIRES)

    def suspend_ca(ps):
        return [p.model_copy(update={"status": "suspended"}) if p.code == "CA" else p for p in ps]

    v2 = verify_next(genesis, _next(genesis, votes, ["GB", "FR", "DE"], suspend_ca))
    assert v2.threshold == 3
    assert len(v2.root_keys) == 3
    with pytest.raises(RosterError) as err:
        verify_next(genesis, _next(genesis, votes, ["GB", "FR"], suspend_ca))
    assert err.value.code == "roster_quorum"
    # A version that skips one is refused, however well signed.
    doc = _next(genesis, votes, ["GB", "FR", "DE", "CA"])
    doc["signed"]["version"] = 3
    doc = {"signed": doc["signed"], "signatures": []}
    for v in votes.values():
        doc = sign_roster(doc, v)
    with pytest.raises(RosterError) as err:
        verify_next(genesis, doc)
    assert err.value.code == "roster_version"
    assert verify_chain([genesis.document, v2.document]).version == 2


def test_a_tampered_roster_does_not_verify(alliance) -> None:
    parties, votes = alliance
    genesis = found_roster("test", parties, votes.values(), expires=EXPIRES)
    doc = genesis.document
    doc["signed"]["x-custodes-roster"]["parties"][0]["urls"] = ["http://evil.example"]
    with pytest.raises(RosterError) as err:
        verify_genesis(doc)
    assert err.value.code == "roster_quorum"


def test_an_expired_final_roster_is_refused(alliance) -> None:
    parties, votes = alliance
    genesis = found_roster("test", parties, votes.values(), expires=EXPIRES)
    with pytest.raises(RosterError) as err:
        verify_chain([genesis.document], now=EXPIRES + timedelta(seconds=1))
    assert err.value.code == "roster_expired"
