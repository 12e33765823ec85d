"""Finality: a checkpoint cosigned by a quorum of the alliance's members.

A checkpoint of party P's log is *final* when it carries P's valid log signature and
valid cosignatures from the witnesses of at least ``quorum_of(len(members))`` members
of the roster in force (the log owner's own witness counts when P is a member: a log
owner vouches for its own log's consistency). Partners' and suspended parties'
witnesses do not count. Pure: bytes and a roster in, a :class:`FinalityResult` out.
"""

from __future__ import annotations

from dataclasses import dataclass

from custodes.errors import CustodesError
from custodes.federation.roster import Party, SignedRoster, quorum_of
from custodes.ledger.checkpoint import open_checkpoint
from custodes.ledger.cosignature import verify_cosignature
from custodes.ledger.note import Note, NoteVerifier, parse_vkey

__all__ = ["FinalityResult", "cosigned_by", "is_final", "member_witnesses", "tlog_policy"]


@dataclass(frozen=True)
class FinalityResult:
    """Whether a checkpoint is final, which members cosigned it and how many it needs."""

    final: bool
    cosigners: tuple[str, ...]  # party codes of the members whose witness cosigned
    needed: int
    size: int = 0
    origin: str = ""


def member_witnesses(roster: SignedRoster) -> dict[str, NoteVerifier]:
    """The witness key of every member in force, by party code."""
    return {p.code: parse_vkey(p.witness_vkey) for p in roster.body.members()}


def cosigned_by(note: Note, verifier: NoteVerifier) -> bool:
    for sig in note.signatures:
        if (sig.name, sig.key_id) != (verifier.name, verifier.key_id):
            continue
        try:
            verify_cosignature(note.text, sig, verifier)
        except CustodesError:
            continue  # a bad line counts for nothing; another line by the same key may
        return True
    return False


def _party(origin_party: Party | str, roster: SignedRoster) -> Party:
    if isinstance(origin_party, Party):
        return origin_party
    party = roster.body.party(origin_party)
    if party is None:
        raise CustodesError(
            f"{origin_party} is not a party of roster version {roster.version}; "
            "a checkpoint can be final only for a party's log",
            code="unknown_party",
            status=404,
        )
    return party


def is_final(note_bytes: bytes, origin_party: Party | str, roster: SignedRoster) -> FinalityResult:
    """Check ``note_bytes`` (a signed checkpoint with its cosignatures) against ``roster``.

    Raises ``NoteError`` (403) when the note is not validly signed by the party's log key
    (nothing about a checkpoint the log did not sign can be final); cosignatures that do
    not verify are not counted.
    """
    party = _party(origin_party, roster)
    checkpoint, note, _ = open_checkpoint(note_bytes, [parse_vkey(party.log_vkey)])
    witnesses = member_witnesses(roster)
    cosigners = tuple(sorted(c for c, v in witnesses.items() if cosigned_by(note, v)))
    needed = quorum_of(len(witnesses)) if witnesses else 1
    return FinalityResult(
        final=checkpoint.origin == party.origin and len(cosigners) >= needed,
        cosigners=cosigners,
        needed=needed,
        size=checkpoint.size,
        origin=checkpoint.origin,
    )


def tlog_policy(roster: SignedRoster) -> str:
    """The alliance's witness policy in C2SP tlog-policy form (names before their use).

    ``log`` for every active party (URL: its tlog-tiles prefix), ``witness`` for every
    member (its code as the name, URL: its tlog-witness prefix),
    one group of the members with threshold ``quorum_of(members)``, and that group as
    the quorum: what this node calls final, for any tlog-policy verifier to check.
    """
    lines = [f"log {p.log_vkey} {p.url}/log" for p in roster.body.parties if p.active]
    members = roster.body.members()
    lines += [f"witness {p.code} {p.witness_vkey} {p.url}/witness" for p in members]
    if members:
        codes = " ".join(p.code for p in members)
        lines += [f"group members {quorum_of(len(members))} {codes}", "quorum members"]
    else:
        lines.append("quorum none")
    return "".join(f"{line}\n" for line in lines)
