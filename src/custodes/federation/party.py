"""Describe a node as a roster party, from the keys in its data directory.

Before an alliance founds its roster, each member creates its node's keys (log, witness,
entry) and a roster key (its vote) and hands the others its :class:`Party`. The keys are
the node's own files (``custodes.ledger.keys``), created here if absent, so the node that
later starts from this data directory has exactly the keys the roster names.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from custodes.federation.roster import Party, PartyRegulator, PartyStatus
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import (
    load_or_create_cosigner,
    load_or_create_entry_signer,
    load_or_create_note_signer,
)

__all__ = ["ROSTER_KEY_FILE", "node_party", "roster_signer"]

ROSTER_KEY_FILE = "roster.key"


def roster_signer(data_dir: Path) -> EnvelopeSigner:
    """The member's roster key (its vote on the roster), created if absent.

    In production this key belongs offline with the member's institute, not beside the
    node; keeping it in the data directory is for the demo and tests.
    """
    return load_or_create_entry_signer(data_dir / ROSTER_KEY_FILE, "roster")[1]


def node_party(
    data_dir: Path,
    *,
    code: str,
    name: str,
    status: PartyStatus,
    urls: Sequence[str],
    origin: str,
    witness_name: str | None = None,
    regulators: Sequence[PartyRegulator] = (),
) -> Party:
    """The party a node in ``data_dir`` is, creating its keys if they are absent."""
    log_signer = load_or_create_note_signer(data_dir / "log.key", origin)
    witness = witness_name or f"{origin}/witness"
    cosigner = load_or_create_cosigner(data_dir / "witness.key", witness)
    _, entry = load_or_create_entry_signer(data_dir / "node.key", "node")
    vote = roster_signer(data_dir) if status == "member" else None
    return Party(
        code=code,
        name=name,
        status=status,
        urls=list(urls),
        origin=origin,
        log_vkey=log_signer.vkey(),
        witness_vkey=cosigner.vkey(),
        entry_key=base64.b64encode(entry.public_key).decode(),
        roster_key=base64.b64encode(vote.public_key).decode() if vote is not None else None,
        regulators=list(regulators),
    )
