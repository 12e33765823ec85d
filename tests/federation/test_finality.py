"""Finality: a checkpoint is final when a quorum of members' witnesses cosigned it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes.errors import CustodesError
from custodes.federation.finality import is_final
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import found_roster
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.cosignature import cosign
from custodes.ledger.errors import NoteError
from custodes.ledger.keys import load_or_create_cosigner, load_or_create_note_signer
from custodes.ledger.note import parse_note

CODES = {"GB": "member", "FR": "member", "DE": "member", "CA": "member", "AU": "partner"}


@pytest.fixture
def world(tmp_path: Path):
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
    votes = [roster_signer(tmp_path / c) for c, s in CODES.items() if s == "member"]
    roster = found_roster("t", parties, votes, expires=datetime.now(UTC) + timedelta(days=9))
    return tmp_path, roster


def _note(tmp_path: Path, origin_code: str, cosigners: list[str]) -> bytes:
    origin = f"{origin_code.lower()}.test/log"
    log_key = load_or_create_note_signer(tmp_path / origin_code / "log.key", origin)
    note = sign_checkpoint(Checkpoint(origin, 7, b"\x01" * 32), log_key)
    text = parse_note(note).text
    lines = ""
    for code in cosigners:
        origin_c = f"{code.lower()}.test/log"
        witness = load_or_create_cosigner(tmp_path / code / "witness.key", f"{origin_c}/witness")
        lines += cosign(text, witness, int(time.time())).line()
    return note + lines.encode()


def test_a_quorum_of_member_witnesses_makes_a_checkpoint_final(world) -> None:
    tmp_path, roster = world
    result = is_final(_note(tmp_path, "GB", ["GB", "FR", "DE"]), "GB", roster)
    assert (result.final, result.cosigners, result.needed, result.size) == (
        True,
        ("DE", "FR", "GB"),
        3,
        7,
    )


def test_partners_witnesses_do_not_count(world) -> None:
    tmp_path, roster = world
    result = is_final(_note(tmp_path, "GB", ["GB", "FR", "AU"]), "GB", roster)
    assert not result.final
    assert result.cosigners == ("FR", "GB")


def test_a_partners_log_is_final_with_three_members(world) -> None:
    tmp_path, roster = world
    party = roster.party("AU")
    assert party is not None
    assert is_final(_note(tmp_path, "AU", ["CA", "FR", "DE"]), party, roster).final
    assert not is_final(_note(tmp_path, "AU", ["AU", "FR", "DE"]), party, roster).final


def test_a_checkpoint_not_signed_by_the_partys_log_is_refused(world) -> None:
    tmp_path, roster = world
    with pytest.raises(NoteError):
        is_final(_note(tmp_path, "FR", ["GB", "FR", "DE"]), "GB", roster)


def test_an_altered_cosignature_does_not_count(world) -> None:
    tmp_path, roster = world
    note = _note(tmp_path, "GB", ["GB", "FR", "DE"]).decode()
    last = note.rstrip("\n").rsplit("\n", 1)[1]
    bad = last[:-6] + ("AAAAA=" if not last.endswith("AAAAA=") else "BBBBB=")
    result = is_final((note.replace(last, bad)).encode(), "GB", roster)
    assert not result.final
    assert len(result.cosigners) == 2


def test_an_unknown_party_is_refused(world) -> None:
    tmp_path, roster = world
    with pytest.raises(CustodesError, match="not a party"):
        is_final(_note(tmp_path, "GB", []), "NZ", roster)
