"""Configure a node's federation from the roster in force, at run time, without restarts.

On every roster installed: the node's witness trusts the log key of every active party
(members and partners, itself included: its own witness vouches for its own log), plus
``CUSTODES_WITNESSED_LOGS`` kept for standalone use; the registry learns each party's
status (a partner's regulators issue no kill orders). Whom the node asks to cosign is
read from the roster by the witnessing thread each round (federation.witnessing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from custodes.federation.roster import SignedRoster
from custodes.ledger.note import NoteVerifier, parse_vkey

if TYPE_CHECKING:
    from custodes.node import Node

__all__ = ["configure_from_roster", "roster_logs"]


def roster_logs(roster: SignedRoster | None, extra: list[str]) -> list[NoteVerifier]:
    """The log keys a witness trusts: every active party's, then ``extra`` vkeys."""
    vkeys = list(extra)
    if roster is not None:
        vkeys += [p.log_vkey for p in roster.body.parties if p.active and p.log_vkey not in extra]
    return [parse_vkey(v) for v in vkeys]


def configure_from_roster(node: Node) -> None:
    """Reconfigure ``node``'s witness and order rights on every roster from now on."""
    federation = node.federation

    def status(code: str) -> str | None:
        party = federation.party(code)
        return None if party is None else party.status

    node.registry.party_status = status

    def changed(roster: SignedRoster) -> None:
        node.witness.set_logs(roster_logs(roster, node.settings.witnessed_logs))

    federation.on_change(changed)
